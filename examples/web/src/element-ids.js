// Keep meshdoc's `$id` on every block: agents and people address elements by it.
//
// y-prosemirror writes a node's ProseMirror attributes to its Yjs element and
// removes any attribute the editor's schema does not declare, so the editor must
// declare `$id` or it would strip the ids that meshdoc assigns. New blocks made
// in the editor (Enter splits a paragraph and copies its attributes) get a fresh
// id, so ids stay unique. Remote changes are left alone: their author assigned ids.
import { Extension } from '@tiptap/core'
import { Plugin, PluginKey } from '@tiptap/pm/state'
import { isChangeOrigin } from '@tiptap/extension-collaboration'

export const ID_ATTRIBUTE = '$id'
const BLOCK_TYPES = [
  'paragraph', 'heading', 'bulletList', 'orderedList', 'listItem', 'blockquote',
  'codeBlock', 'horizontalRule', 'hardBreak'
]

export const ElementIds = Extension.create({
  name: 'meshdocElementIds',

  addGlobalAttributes () {
    return [{
      types: BLOCK_TYPES,
      attributes: {
        [ID_ATTRIBUTE]: {
          default: null,
          keepOnSplit: false,
          parseHTML: (element) => element.getAttribute('data-mesh-id'),
          renderHTML: (attributes) => (attributes[ID_ATTRIBUTE] ? { 'data-mesh-id': attributes[ID_ATTRIBUTE] } : {})
        }
      }
    }]
  },

  addProseMirrorPlugins () {
    return [new Plugin({
      key: new PluginKey('meshdocElementIds'),
      appendTransaction: (transactions, _oldState, newState) => {
        if (!transactions.some((tr) => tr.docChanged) || transactions.some(isChangeOrigin)) return null
        const seen = new Set()
        const tr = newState.tr
        newState.doc.descendants((node, pos) => {
          if (!BLOCK_TYPES.includes(node.type.name)) return
          const id = node.attrs[ID_ATTRIBUTE]
          if (id && !seen.has(id)) {
            seen.add(id)
            return
          }
          const fresh = crypto.randomUUID()
          seen.add(fresh)
          tr.setNodeMarkup(pos, undefined, { ...node.attrs, [ID_ATTRIBUTE]: fresh })
        })
        return tr.docChanged ? tr : null
      }
    })]
  }
})
