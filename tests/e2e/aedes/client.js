'use strict'
// A real MQTT client (MQTT.js) for the live transport tests, driven over stdin.
//   node client.js --ws ws://HOST:PORT/mqtt | --tcp HOST:PORT  --id ID --keepalive K
//                  [--v31] [--bind ADDR]
// aedes 0.51 speaks MQTT 3.1 and 3.1.1 (not 5): --v31 sends 3.1 (MQIsdp), else 3.1.1.
// --bind ADDR: the local address of the TCP connection (e.g. 127.0.0.2 on lo), so that a
// proxy's address and the real client's differ.
// stdout: one JSON object a line, flushed: {"ev":"connected","t":EPOCH,"local":"ip:port"},
// {"ev":"send"|"recv","cmd":"pingreq",...,"t":EPOCH} per MQTT packet, {"ev":"close"},
// {"ev":"error","msg":...}. stdin: "publish TOPIC QOS [SIZE]", "subscribe TOPIC", "end"
// (DISCONNECT, then exit). The tests stop it with SIGSTOP (a hung app) or SIGKILL (FIN).
const net = require('net')
const mqtt = require('mqtt')

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i < 0 ? dflt : args[i + 1]
}
const flag = (name) => args.includes(name)
const out = (o) => process.stdout.write(JSON.stringify(Object.assign(o, { t: Date.now() / 1000 })) + '\n')

let sock = null
const connectTcp = (o) => {
  sock = net.connect(Object.assign({}, o, { localAddress: opt('--bind') || undefined }))
  return sock
}
const options = {
  clientId: opt('--id', 'mqttlive-test'),
  keepalive: Number(opt('--keepalive', 10)),
  protocolVersion: flag('--v31') ? 3 : 4,
  protocolId: flag('--v31') ? 'MQIsdp' : 'MQTT',
  clean: true,
  reconnectPeriod: 0,
  connectTimeout: 5000
}
let client
if (opt('--ws')) {
  // ws (MQTT.js's WebSocket client) takes the socket from createConnection.
  options.wsOptions = { createConnection: (o) => connectTcp(Object.assign({}, o, { path: o.socketPath })) }
  client = mqtt.connect(opt('--ws'), options)
} else {
  const hp = opt('--tcp')
  const host = hp.slice(0, hp.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1') // [::1]:1883 too
  const port = Number(hp.slice(hp.lastIndexOf(':') + 1))
  client = new mqtt.MqttClient(() => connectTcp({ host, port }), options)
}

client.on('connect', () => out({ ev: 'connected', local: sock ? sock.localAddress + ':' + sock.localPort : null }))
client.on('packetsend', (p) => out({ ev: 'send', cmd: p.cmd, qos: p.qos }))
client.on('packetreceive', (p) => out({ ev: 'recv', cmd: p.cmd, reasonCode: p.reasonCode }))
client.on('error', (e) => out({ ev: 'error', msg: e.message }))
client.on('close', () => out({ ev: 'close' }))

process.stdin.on('end', () => process.exit(0)) // the test went away
let buf = ''
process.stdin.on('data', (d) => {
  buf += d
  let nl
  while ((nl = buf.indexOf('\n')) >= 0) {
    const [cmd, a, b, size] = buf.slice(0, nl).trim().split(/\s+/)
    buf = buf.slice(nl + 1)
    if (cmd === 'publish') {
      const payload = size ? Buffer.alloc(Number(size), 'p') : 'hello from ' + options.clientId
      client.publish(a, payload, { qos: Number(b || 0) }, (err) =>
        out({ ev: 'published', err: err ? err.message : null }))
    } else if (cmd === 'subscribe') {
      client.subscribe(a, (err) => out({ ev: 'subscribed', err: err ? err.message : null }))
    } else if (cmd === 'end') {
      client.end(false, () => { out({ ev: 'ended' }); process.exit(0) })
    }
  }
})
