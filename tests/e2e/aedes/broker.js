'use strict'
// A tiny aedes MQTT broker for the fault lab and the live transport tests.
//   node broker.js HOST PORT [--ws WSPORT] [--proxy-port PPORT]
// PORT: plain MQTT over TCP (what tests/e2e/fault_lab.py uses).
// --ws WSPORT: MQTT over WebSocket (the `ws` package; any path, subprotocol `mqtt`).
// --proxy-port PPORT: plain MQTT whose connections start with a PROXY protocol v1 or v2
//   header (as HAProxy's `send-proxy` / `send-proxy-v2` sends it), decoded by
//   aedes-protocol-decoder as aedes-server-factory does with `trustProxy: true`; the real
//   client address becomes client.connDetails and is logged.
// aedes 0.51 (CommonJS, Node >= 16): aedes 1.x needs Node >= 20, Debian 12 ships Node 18.
const http = require('http')
const net = require('net')
const { WebSocketServer, createWebSocketStream } = require('ws')
const { protocolDecoder } = require('aedes-protocol-decoder')
const aedes = require('aedes')({
  // aedes-server-factory's README pattern: the decoded PROXY source is the client's address.
  preConnect (client, packet, done) {
    if (client.connDetails && client.connDetails.ipAddress) client.ip = client.connDetails.ipAddress
    done(null, true)
  }
})

const args = process.argv.slice(2)
const opt = (name) => {
  const i = args.indexOf(name)
  if (i < 0) return null
  const v = Number(args[i + 1])
  args.splice(i, 2)
  if (!Number.isInteger(v) || v <= 0) throw new Error(name + ' needs a port')
  return v
}
const wsPort = opt('--ws')
const proxyPort = opt('--proxy-port')
const host = args[0] || '127.0.0.1'
const port = Number(args[1] || 1883)

const who = (c) => {
  const d = c.connDetails
  return d ? ' from ' + d.ipAddress + ':' + d.port + (d.isProxy ? ' (PROXY v' + d.isProxy + ')' : '') +
    (d.isWebsocket ? ' (websocket)' : '') : ''
}
aedes.on('client', (c) => console.log('client connected', c.id + who(c)))
aedes.on('clientDisconnect', (c) => console.log('client disconnected', c.id))
aedes.on('keepaliveTimeout', (c) => console.log('keepalive timeout', c.id))
aedes.on('clientError', (c, err) => console.log('client error', c.id, err.message))

const servers = []
const listen = (server, p, what) => {
  servers.push(server)
  server.listen(p, host, () => console.log('aedes %s listening on %s:%d (%s)', aedes.version, host, p, what))
}

listen(net.createServer(aedes.handle), port, 'mqtt')

if (wsPort) {
  const web = http.createServer((req, res) => { res.writeHead(426); res.end() })
  const wss = new WebSocketServer({ server: web })
  wss.on('connection', (ws, req) => {
    const stream = createWebSocketStream(ws)
    stream._socket = ws._socket // what aedes-protocol-decoder reads the addresses from
    req.connDetails = { isWebsocket: true, ipAddress: req.socket.remoteAddress, port: req.socket.remotePort }
    stream.on('error', (err) => console.log('websocket error', err.message))
    aedes.handle(stream, req)
  })
  listen(web, wsPort, 'websocket')
}

// The whole PROXY header: v1 is one line up to CRLF (at most 107 bytes), v2 is 16 bytes
// plus the length in bytes 14..15. null while incomplete, false when it is no header.
const V2_SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')
function headerLength (buf) {
  if (buf.length >= 6 && buf.subarray(0, 6).toString('latin1') === 'PROXY ') {
    const end = buf.indexOf('\r\n')
    return end >= 0 ? end + 2 : (buf.length > 107 ? false : null)
  }
  if (buf.length >= 16 && buf.subarray(0, 12).equals(V2_SIG)) return 16 + buf.readUInt16BE(14)
  if (buf.length < 16 && V2_SIG.subarray(0, buf.length).equals(buf)) return null
  if (buf.length < 6 && Buffer.from('PROXY ').subarray(0, buf.length).equals(buf)) return null
  return false
}

// aedes-protocol-decoder 2.2.0 (proxy-protocol-js 4) does not skip the TLVs that may
// follow the v2 addresses (HAProxy `proxy-v2-options crc32c,unique-id`, AWS, Azure): it
// hands them to aedes as MQTT bytes and aedes drops the connection. So they are cut here,
// keeping the addresses for the decoder.
const V2_ADDR_LEN = { 0x00: 0, 0x11: 12, 0x12: 12, 0x21: 36, 0x22: 36, 0x31: 216, 0x32: 216 }
function withoutTlvs (buf) {
  if (buf.length < 16 || !buf.subarray(0, 12).equals(V2_SIG)) return buf
  const len = buf.readUInt16BE(14)
  const addr = V2_ADDR_LEN[buf[13]]
  if (addr === undefined || len <= addr) return buf
  const head = Buffer.from(buf.subarray(0, 16 + addr))
  head.writeUInt16BE(addr, 14)
  return Buffer.concat([head, buf.subarray(16 + len)])
}

if (proxyPort) {
  listen(net.createServer((conn) => {
    let pending = Buffer.alloc(0)
    const onReadable = () => {
      for (let chunk; (chunk = conn.read()) !== null;) pending = Buffer.concat([pending, chunk])
      const n = headerLength(pending)
      if (n === null || (n && pending.length < n)) return
      conn.removeListener('readable', onReadable)
      if (n === false) {
        console.log('no PROXY header from %s:%d: closing', conn.remoteAddress, conn.remotePort)
        conn.destroy()
        return
      }
      if (pending.length >= 16 && pending.subarray(0, 12).equals(V2_SIG) && (pending[12] & 0x0f) === 0) {
        console.log('PROXY v2 LOCAL (health check) from %s:%d', conn.remoteAddress, conn.remotePort)
      }
      const req = { connDetails: protocolDecoder(conn, withoutTlvs(pending), {}) }
      const rest = req.connDetails.data
      if (rest && rest.length) conn.unshift(Buffer.from(rest))
      aedes.handle(conn, req)
    }
    conn.on('readable', onReadable)
    conn.on('error', (err) => console.log('proxy listener socket error', err.message))
  }), proxyPort, 'mqtt behind PROXY protocol')
}

const stop = () => {
  for (const s of servers) s.close()
  aedes.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
