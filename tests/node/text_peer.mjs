// A Yjs peer for the rich-text interop tests.
// stdin: {"updates": [base64...], "ops": [[op, codePointIndex, ...]...], "root": "default"}
// Applies the updates, then the ops to the first XmlText found depth-first under the root
// (indices are code points, converted here to the UTF-16 offsets Yjs counts), and prints
// {"text", "delta", "update"} where update is the whole document state (base64).
import * as Y from 'yjs'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'))
const doc = new Y.Doc()
if (input.clientID !== undefined) doc.clientID = input.clientID
for (const u of input.updates || []) Y.applyUpdate(doc, Buffer.from(u, 'base64'))
const root = doc.getXmlFragment(input.root || 'default')

const findText = (node) => {
  for (const child of node.toArray()) {
    if (child instanceof Y.XmlText) return child
    if (child instanceof Y.XmlElement) {
      const found = findText(child)
      if (found) return found
    }
  }
  return null
}

let text = findText(root)
if (!text && input.create) {
  const p = new Y.XmlElement('paragraph')
  root.insert(0, [p])
  text = new Y.XmlText()
  p.insert(0, [text])
}
function plain () {
  return text.toDelta().map((op) => typeof op.insert === 'string' ? op.insert : '\ufffc').join('')
}
function utf16 (cp) {
  return Array.from(plain()).slice(0, cp).join('').length
}
for (const [op, index, a, b] of input.ops || []) {
  if (op === 'insert') text.insert(utf16(index), a, b || undefined)
  else if (op === 'insert_raw') text.insert(index, a, b || undefined)
  else if (op === 'delete') text.delete(utf16(index), utf16(index + a) - utf16(index))
  else if (op === 'delete_raw') text.delete(index, a)
  else if (op === 'format') text.format(utf16(index), utf16(index + a) - utf16(index), b)
  else throw new Error('unknown op ' + op)
}
const toCodePoints = (utf16Index) => Array.from(plain().slice(0, utf16Index)).length
const resolved = (input.resolve || []).map((json) => {
  const abs = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(json), doc)
  return abs && abs.type === text ? toCodePoints(abs.index) : null
})
const made = (input.make || []).map(([index, assoc]) =>
  Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, utf16(index), assoc)))
const out = {
  resolved,
  made,
  text: text ? plain() : null,
  delta: text ? text.toDelta() : null,
  update: Buffer.from(Y.encodeStateAsUpdate(doc)).toString('base64')
}
process.stdout.write(JSON.stringify(out))
