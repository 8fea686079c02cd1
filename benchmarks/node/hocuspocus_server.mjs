// @hocuspocus/server as the reference: no extensions, documents in memory, quiet.
//   PORT=1234 node hocuspocus_server.mjs
import { Server } from '@hocuspocus/server'

const server = new Server({
  address: '127.0.0.1',
  port: Number(process.env.PORT || 1234),
  quiet: true
})
await server.listen()
const stop = async () => {
  await server.destroy()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
