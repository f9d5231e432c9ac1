/**
 * Raw framed TCP baseline of the host benchmark (a child process): every
 * request is one length-prefixed frame `[u32 length][u32 id][f64 n]`,
 * answered by one frame with `n + 1`. Prints its port on stdout.
 */
import * as Net from "node:net"

const server = Net.createServer((socket) => {
  socket.setNoDelay(true)
  let buffered: Buffer = Buffer.alloc(0)
  socket.on("data", (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    let offset = 0
    while (buffered.length - offset >= 4) {
      const length = buffered.readUInt32BE(offset)
      if (buffered.length - offset < 4 + length) break
      const id = buffered.readUInt32BE(offset + 4)
      const n = buffered.readDoubleBE(offset + 8)
      const reply = Buffer.allocUnsafe(16)
      reply.writeUInt32BE(12, 0)
      reply.writeUInt32BE(id, 4)
      reply.writeDoubleBE(n + 1, 8)
      socket.write(reply)
      offset += 4 + length
    }
    buffered = buffered.subarray(offset)
  })
  socket.on("error", () => {})
})
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${(server.address() as Net.AddressInfo).port}\n`)
})
process.on("disconnect", () => process.exit(0))
