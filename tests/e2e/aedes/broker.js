'use strict'
// A tiny aedes MQTT broker over plain TCP for the fault lab: node broker.js HOST PORT
// aedes 0.51 (CommonJS, Node >= 16): aedes 1.x needs Node >= 20, Debian 12 ships Node 18.
const net = require('net')
const aedes = require('aedes')()

const host = process.argv[2] || '127.0.0.1'
const port = Number(process.argv[3] || 1883)
aedes.on('client', (c) => console.log('client connected', c.id))
aedes.on('clientDisconnect', (c) => console.log('client disconnected', c.id))
aedes.on('keepaliveTimeout', (c) => console.log('keepalive timeout', c.id))
aedes.on('clientError', (c, err) => console.log('client error', c.id, err.message))
const server = net.createServer(aedes.handle)
server.listen(port, host, () => console.log('aedes %s listening on %s:%d', aedes.version, host, port))
const stop = () => server.close(() => aedes.close(() => process.exit(0)))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
