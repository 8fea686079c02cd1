// Suggestions in the editor: show what people and agents propose, accept or reject it.
//
// meshdoc stores a suggestion in the document itself, in shapes y-prosemirror carries:
// the marks `suggestion_insert` and `suggestion_delete` ({id, author, time}) on text, and
// the attribute `$suggestion` ({id, author, time, kind: 'insert' | 'delete'}) on a block.
// The editor must declare them, or y-prosemirror would drop them the first time it writes
// the paragraph back. Resolving is an ordinary edit through ProseMirror, so it syncs like
// typing: accepting an insertion removes its mark (or attribute), rejecting it removes the
// content; accepting a deletion removes the content, rejecting it removes the mark.
import { Extension, Mark } from '@tiptap/core'

export const SUGGESTION_ATTRIBUTE = '$suggestion'
export const INSERT_MARK = 'suggestion_insert'
export const DELETE_MARK = 'suggestion_delete'
const KIND_OF_MARK = { [INSERT_MARK]: 'insert', [DELETE_MARK]: 'delete' }
const BLOCK_TYPES = [
  'paragraph', 'heading', 'bulletList', 'orderedList', 'listItem', 'blockquote',
  'codeBlock', 'horizontalRule', 'hardBreak'
]

// The mark's attributes go to the DOM as data-* attributes (an `id` attribute would clash).
const markAttributes = () => Object.fromEntries(['id', 'author', 'time'].map((name) => [name, {
  default: null,
  parseHTML: (element) => {
    const value = element.getAttribute(`data-suggestion-${name}`)
    return name === 'time' && value !== null ? Number(value) : value
  },
  renderHTML: (attributes) => (attributes[name] === null ? {} : { [`data-suggestion-${name}`]: attributes[name] })
}]))

function suggestionMark (name, tag, verb) {
  return Mark.create({
    name,
    inclusive: false, // typing at its edge is the typist's own text, not part of the suggestion
    addAttributes: markAttributes,
    parseHTML: () => [{ tag: `${tag}[data-suggestion-id]` }],
    renderHTML: ({ mark, HTMLAttributes }) => [tag, {
      ...HTMLAttributes,
      class: `suggestion suggestion-${KIND_OF_MARK[name]}`,
      title: `${verb} by ${mark.attrs.author || 'someone'}`
    }, 0]
  })
}

export const SuggestionInsert = suggestionMark(INSERT_MARK, 'ins', 'Suggested')
export const SuggestionDelete = suggestionMark(DELETE_MARK, 'del', 'Suggested deletion')

/** The `$suggestion` block attribute, shown as data-suggestion on the block. */
export const SuggestionAttribute = Extension.create({
  name: 'meshdocSuggestionAttribute',
  addGlobalAttributes () {
    return [{
      types: BLOCK_TYPES,
      attributes: {
        [SUGGESTION_ATTRIBUTE]: {
          default: null,
          keepOnSplit: false, // Enter in a suggested block makes a plain one
          parseHTML: (element) => {
            const kind = element.getAttribute('data-suggestion')
            if (!kind) return null
            return {
              id: element.getAttribute('data-suggestion-id'),
              author: element.getAttribute('data-suggestion-author'),
              time: Number(element.getAttribute('data-suggestion-time')),
              kind
            }
          },
          renderHTML: (attributes) => {
            const value = attributes[SUGGESTION_ATTRIBUTE]
            if (!value || !value.id) return {}
            return {
              'data-suggestion': value.kind,
              'data-suggestion-id': value.id,
              'data-suggestion-author': value.author,
              'data-suggestion-time': value.time,
              class: `suggestion-block suggestion-${value.kind}`
            }
          }
        }
      }
    }]
  }
})

export const Suggestions = [SuggestionInsert, SuggestionDelete, SuggestionAttribute]

/** Every pending suggestion in the editor's document, in document order, with its places. */
export function listSuggestions (doc) {
  const byId = new Map()
  const add = (fields, kind, target, from, to, text) => {
    if (!fields || !fields.id) return
    let entry = byId.get(fields.id)
    if (!entry) {
      entry = { id: fields.id, author: fields.author || '', time: fields.time || 0, kind, target, text: '', places: [] }
      byId.set(fields.id, entry)
    }
    entry.places.push({ from, to, kind, target })
    entry.text += (entry.text && target === 'element' ? '\n' : '') + text
  }
  doc.descendants((node, pos) => {
    const value = node.attrs?.[SUGGESTION_ATTRIBUTE]
    if (value && (value.kind === 'insert' || value.kind === 'delete')) {
      add(value, value.kind, 'element', pos, pos + node.nodeSize, node.textContent)
    }
    if (node.isText) {
      for (const mark of node.marks) {
        const kind = KIND_OF_MARK[mark.type.name]
        if (kind) add(mark.attrs, kind, 'text', pos, pos + node.nodeSize, node.text)
      }
    }
  })
  return [...byId.values()]
}

/**
 * Accept or reject the suggestions with these ids (or, with `author`, all of theirs), in one
 * ProseMirror transaction: marks and attributes first, then content removed from the end.
 */
export function resolveSuggestions (editor, { ids = null, author = null, accept }) {
  const { state } = editor
  const wanted = listSuggestions(state.doc).filter((s) =>
    (ids === null || ids.includes(s.id)) && (author === null || s.author === author))
  if (!wanted.length) return 0
  const tr = state.tr
  const removals = []
  for (const suggestion of wanted) {
    for (const place of suggestion.places) {
      const removesContent = (place.kind === 'delete') === accept
      if (removesContent) {
        removals.push(place)
      } else if (place.target === 'text') {
        const type = state.schema.marks[place.kind === 'insert' ? INSERT_MARK : DELETE_MARK]
        state.doc.nodesBetween(place.from, place.to, (node, pos) => {
          const mark = node.isText && node.marks.find((m) => m.type === type && m.attrs.id === suggestion.id)
          if (mark) tr.removeMark(Math.max(pos, place.from), Math.min(pos + node.nodeSize, place.to), mark)
        })
      } else {
        const node = tr.doc.nodeAt(place.from)
        if (node) tr.setNodeMarkup(place.from, undefined, { ...node.attrs, [SUGGESTION_ATTRIBUTE]: null })
      }
    }
  }
  removals.sort((a, b) => b.from - a.from)
  for (const place of removals) {
    const from = tr.mapping.map(place.from, 1)
    const to = tr.mapping.map(place.to, -1)
    if (to > from) tr.delete(from, to)
  }
  editor.view.dispatch(tr)
  return wanted.length
}

function button (label, className, onClick) {
  const element = document.createElement('button')
  element.type = 'button'
  element.textContent = label
  element.className = className
  element.addEventListener('click', onClick)
  return element
}

/**
 * The suggestions panel: each pending suggestion with Accept and Reject, grouped by author
 * with Accept all and Reject all. `nameOf(id)` names an author (a participant id).
 */
export function showSuggestions (editor, element, nameOf) {
  const list = element.querySelector('.suggestion-list')
  const render = () => {
    const suggestions = listSuggestions(editor.state.doc)
    element.hidden = suggestions.length === 0
    list.replaceChildren()
    const authors = [...new Set(suggestions.map((s) => s.author))]
    for (const author of authors) {
      const group = document.createElement('li')
      group.className = 'suggestion-author'
      group.dataset.author = author
      const header = document.createElement('div')
      header.className = 'suggestion-author-header'
      const name = document.createElement('span')
      name.className = 'name'
      name.textContent = nameOf(author)
      header.append(
        name,
        button('Accept all', 'accept-all', () => resolveSuggestions(editor, { author, accept: true })),
        button('Reject all', 'reject-all', () => resolveSuggestions(editor, { author, accept: false }))
      )
      const items = document.createElement('ul')
      items.className = 'suggestion-items'
      for (const suggestion of suggestions.filter((s) => s.author === author)) {
        const item = document.createElement('li')
        item.className = `suggestion-item suggestion-${suggestion.kind}`
        item.dataset.id = suggestion.id
        item.dataset.kind = suggestion.kind
        const what = document.createElement('span')
        what.className = 'suggestion-text'
        const verb = suggestion.kind === 'insert' ? 'Insert' : 'Delete'
        what.textContent = `${verb} “${suggestion.text.length > 60 ? suggestion.text.slice(0, 59) + '…' : suggestion.text}”`
        item.append(
          what,
          button('Accept', 'accept', () => resolveSuggestions(editor, { ids: [suggestion.id], accept: true })),
          button('Reject', 'reject', () => resolveSuggestions(editor, { ids: [suggestion.id], accept: false }))
        )
        items.append(item)
      }
      group.append(header, items)
      list.append(group)
    }
  }
  editor.on('update', render)
  editor.on('create', render)
  render()
  return render
}
