// Checks documents written by meshdoc.markdown against what y-prosemirror builds for Tiptap.
//
// Input (argv[2]): a JSON file with a list of cases
//   {name, fragment, update: base64 Yjs update from Python, expected: ProseMirror JSON doc}.
// For each case, prints one JSON line:
//   ours / theirs: the fragments' XML (Yjs toString, `$id` and null attributes left out),
//   structureEqual: element tree, attributes and text deltas equal (ignoring `$id` and nulls),
//   pmEqual: y-prosemirror reads our document as the expected Tiptap node,
//   pmError: why Tiptap's schema refused our document, if it did,
//   tiptapUpdate: base64 update of the document y-prosemirror builds from `expected`.
import fs from 'node:fs'
import * as Y from 'yjs'
import { getSchema } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import { prosemirrorJSONToYDoc, yDocToProsemirrorJSON } from 'y-prosemirror'

const schema = getSchema([
  StarterKit.configure({ link: { HTMLAttributes: { target: null, rel: null } } })
])

const clean = (attrs) => {
  const out = {}
  for (const key of Object.keys(attrs).sort()) {
    const value = attrs[key]
    if (key === '$id' || value === null || value === undefined) continue
    out[key] = value !== null && typeof value === 'object' ? clean(value) : value
  }
  return out
}

const structure = (type) => {
  if (type instanceof Y.XmlText) {
    return { text: type.toDelta().map((op) => ({ insert: op.insert, attributes: clean(op.attributes || {}) })) }
  }
  const node = { children: type.toArray().map(structure) }
  if (type instanceof Y.XmlElement) {
    node.name = type.nodeName
    node.attributes = clean(type.getAttributes())
  }
  return node
}

const xml = (fragment) =>
  fragment.toString().replace(/ \$id="[^"]*"/g, '').replace(/ [\w-]+="null"/g, '')

const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
for (const c of cases) {
  const ours = new Y.Doc()
  Y.applyUpdate(ours, Buffer.from(c.update, 'base64'))
  const theirs = prosemirrorJSONToYDoc(schema, c.expected, c.fragment)
  const ourFragment = ours.getXmlFragment(c.fragment)
  const theirFragment = theirs.getXmlFragment(c.fragment)
  const result = {
    name: c.name,
    ours: xml(ourFragment),
    theirs: xml(theirFragment),
    structureEqual:
      JSON.stringify(structure(ourFragment)) === JSON.stringify(structure(theirFragment)),
    pmEqual: false,
    pmError: null,
    tiptapUpdate: Buffer.from(Y.encodeStateAsUpdate(theirs)).toString('base64')
  }
  try {
    const node = schema.nodeFromJSON(yDocToProsemirrorJSON(ours, c.fragment))
    node.check()
    const expected = schema.nodeFromJSON(c.expected)
    result.pmEqual = JSON.stringify(node.toJSON()) === JSON.stringify(expected.toJSON())
  } catch (error) {
    result.pmError = String(error)
  }
  console.log(JSON.stringify(result))
}
