// A Yjs peer for the meshdoc element-tree interop tests.
// stdin: {"updates": [base64...], "fragment": "default", "ops": [{...}], "clientID"?: n}
// Applies the updates, then the ops (one transaction), and prints
// {"xml", "texts", "rootAttributes", "update", "diff"}:
//   xml            fragment.toString() (Yjs's own XML serialisation)
//   texts          toDelta() of every XmlText, depth-first in document order
//   rootAttributes the "<fragment>:attributes" map as JSON
//   update         the whole document state (base64)
//   diff           only what the ops added (base64), relative to the state before them
// Ops address a node by "path": child indices from the fragment.
// Sticky positions in binary form (Y.encodeRelativePosition), indices in code points:
//   "make": [{path, index, assoc}] -> "made": [base64...]
//   "resolve": [{path, position: base64}] -> "resolved": [index or null...]
import * as Y from 'yjs'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'))
const doc = new Y.Doc()
if (input.clientID !== undefined) doc.clientID = input.clientID
for (const u of input.updates || []) Y.applyUpdate(doc, Buffer.from(u, 'base64'))
const name = input.fragment || 'default'
const root = doc.getXmlFragment(name)
const rootAttributes = doc.getMap(name + ':attributes')

const at = (path) => path.reduce((node, i) => node.get(i), root)

const before = Y.encodeStateVector(doc)
doc.transact(() => {
  for (const op of input.ops || []) {
    const node = at(op.path || [])
    if (op.op === 'element') {
      const el = new Y.XmlElement(op.tag)
      node.insert(op.index ?? node.length, [el])
      for (const [k, v] of Object.entries(op.attrs || {})) el.setAttribute(k, v)
      if (op.text !== undefined) {
        const text = new Y.XmlText()
        el.insert(0, [text])
        text.insert(0, op.text, op.marks || {})
      }
    } else if (op.op === 'text') {
      node.insert(op.index, op.text, op.marks || {})
    } else if (op.op === 'format') {
      node.format(op.index, op.length, op.marks)
    } else if (op.op === 'attr') {
      node.setAttribute(op.key, op.value)
    } else if (op.op === 'delete') {
      node.delete(op.index, op.length)
    } else if (op.op === 'root_attr') {
      rootAttributes.set(op.key, op.value)
    } else {
      throw new Error('unknown op ' + op.op)
    }
  }
}, 'node')

const plain = (text) => text.toDelta().map((op) => typeof op.insert === 'string' ? op.insert : '\ufffc').join('')
const toUtf16 = (text, cp) => Array.from(plain(text)).slice(0, cp).join('').length
const toCodePoints = (text, u) => Array.from(plain(text).slice(0, u)).length
const made = (input.make || []).map(({ path, index, assoc }) => {
  const text = at(path)
  const rpos = Y.createRelativePositionFromTypeIndex(text, toUtf16(text, index), assoc)
  return Buffer.from(Y.encodeRelativePosition(rpos)).toString('base64')
})
const resolved = (input.resolve || []).map(({ path, position }) => {
  const text = at(path)
  const rpos = Y.decodeRelativePosition(Buffer.from(position, 'base64'))
  const abs = Y.createAbsolutePositionFromRelativePosition(rpos, doc)
  return abs && abs.type === text ? toCodePoints(text, abs.index) : null
})

const texts = []
const walk = (node) => {
  for (const child of node.toArray()) {
    if (child instanceof Y.XmlText) texts.push(child.toDelta())
    else if (child instanceof Y.XmlElement) walk(child)
  }
}
walk(root)
process.stdout.write(JSON.stringify({
  xml: root.toString(),
  texts,
  rootAttributes: rootAttributes.toJSON(),
  made,
  resolved,
  update: Buffer.from(Y.encodeStateAsUpdate(doc)).toString('base64'),
  diff: Buffer.from(Y.encodeStateAsUpdate(doc, before)).toString('base64')
}))
