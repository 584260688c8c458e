// tend's preload for Node apps in cluster mode, loaded with --require. It changes nothing until
// tend asks: apps run as they would without it.
//
// Drain (every Node version): when an instance is replaced, tend sends NODE_TEND_DRAIN and then
// Node's own cluster 'disconnect'. server.close() waits for open connections, and busy keep-alive
// connections never close by themselves, so while draining every response says
// "Connection: close" and idle connections are closed every 100 ms.
//
// Listen (only with TEND_NODE_SHIM=1, for Node versions whose internal cluster protocol tend does
// not know): listen(port) asks tend for the slot's socket over the IPC channel and listens on it.
'use strict';
const http = require('http');
const https = require('https');
const net = require('net');

const servers = new Set();
let draining = false;

function watch(proto) {
  const emit = proto.emit;
  proto.emit = function (ev, ...args) {
    if (ev === 'listening') servers.add(this);
    else if (ev === 'close') servers.delete(this);
    else if (ev === 'request' && draining && args[1]) args[1].shouldKeepAlive = false;
    return emit.call(this, ev, ...args);
  };
}
watch(http.Server.prototype);
if (https.Server.prototype.emit !== http.Server.prototype.emit) watch(https.Server.prototype);

function sweep() {
  for (const s of servers) {
    if (typeof s.closeIdleConnections === 'function') s.closeIdleConnections();
  }
}

const shimmed = new Set();
let disconnecting = false;

// As a Node cluster worker does on 'disconnect': close every server, wait until their open
// connections are done, then close the IPC channel, which tells tend the process is drained.
function disconnectWhenClosed() {
  let open = 0;
  const done = () => {
    if (--open <= 0 && process.connected) process.disconnect();
  };
  for (const s of shimmed) {
    if (!s.listening) continue;
    open++;
    s.close(done);
  }
  if (open === 0 && process.connected) process.disconnect();
}

process.on('internalMessage', (m, handle) => {
  if (!m || typeof m.cmd !== 'string') return;
  if (m.cmd === 'NODE_TEND_DRAIN' && !draining) {
    draining = true;
    sweep();
    setInterval(sweep, 100).unref();
  } else if (m.cmd === 'NODE_TEND_DISCONNECT' && !disconnecting) {
    disconnecting = true;
    disconnectWhenClosed();
  } else if (m.cmd === 'NODE_TEND_LISTEN_REPLY') {
    const done = pending.get(m.ack);
    if (done) {
      pending.delete(m.ack);
      done(m, handle);
    }
  }
});

const pending = new Map();
let seq = 0;

if (process.env.TEND_NODE_SHIM === '1' && typeof process.send === 'function') {
  delete process.env.TEND_NODE_SHIM;
  const listen = net.Server.prototype.listen;
  const counts = new Map();
  net.Server.prototype.listen = function (...args) {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
    const a0 = args[0];
    let port, host;
    if (a0 !== null && typeof a0 === 'object') {
      if (a0.path !== undefined || a0.fd !== undefined || a0._handle || a0.handle || a0.exclusive) {
        return listen.apply(this, cb ? [...args, cb] : args);
      }
      port = a0.port;
      host = a0.host;
    } else if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0)) || a0 === undefined) {
      port = a0;
      host = typeof args[1] === 'string' ? args[1] : undefined;
    } else {
      return listen.apply(this, cb ? [...args, cb] : args); // a unix path
    }
    port = Number(port || 0);
    const key = `${host || ''}:${port}`;
    const index = counts.get(key) || 0;
    counts.set(key, index + 1);
    const id = seq++;
    // The IPC channel does not keep a process alive; until the socket arrives nothing else may.
    const keep = setInterval(() => {}, 1 << 30);
    pending.set(id, (reply, handle) => {
      clearInterval(keep);
      if (reply.errno || !handle) {
        const e = new Error(`listen ${reply.code || 'EADDRINUSE'}: ${reply.message || 'port ' + port}`);
        e.code = reply.code || 'EADDRINUSE';
        e.port = port;
        this.emit('error', e);
        return;
      }
      shimmed.add(this);
      this.once('listening', () => process.send({ cmd: 'NODE_TEND_LISTENING', port: reply.port }));
      listen.call(this, handle, cb);
    });
    const ask = (address) => process.send({ cmd: 'NODE_TEND_LISTEN', seq: id, port, address, index });
    if (host && net.isIP(host) === 0) {
      // A name, as listen() itself accepts: resolve it first, as net does.
      require('dns').lookup(host, (err, address) => {
        if (err) {
          pending.delete(id);
          clearInterval(keep);
          this.emit('error', err);
          return;
        }
        ask(address);
      });
    } else {
      ask(host || null);
    }
    return this;
  };
}
