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
  update: Buffer.from(Y.encodeStateAsUpdate(doc)).toString('base64'),
  diff: Buffer.from(Y.encodeStateAsUpdate(doc, before)).toString('base64')
}))
