// Load a meshroom snapshot file (one Yjs update, v1) and print its content as JSON.
// Usage: node storage_load.mjs <snapshot.yjs>
import { readFileSync } from 'node:fs'
import * as Y from 'yjs'

const doc = new Y.Doc()
Y.applyUpdate(doc, new Uint8Array(readFileSync(process.argv[2])))
console.log(JSON.stringify({
  text: doc.getText('text').toString(),
  tokens: doc.getArray('tokens').toJSON(),
  meta: doc.getMap('meta').toJSON(),
  xml: doc.getXmlFragment('default').toString(),
  bold: doc.getText('text').toDelta()
}))
