// tend's preload for Node apps in cluster mode, loaded with --require. It changes nothing until
// tend asks: apps run as they would without it.
//
// Drain (every Node version): when an instance is replaced, tend sends NODE_TEND_DRAIN and then
// Node's own cluster 'disconnect'. server.close() waits for open connections, and busy keep-alive
// connections never close by themselves, so while draining every response says
// "Connection: close". A connection that is idle is closed only once it has been idle for a
// second: closing it the moment the drain starts (as Node's server.close() does) races a client
// that is sending its next request on it, and that request fails.
// Listen (only with TEND_NODE_SHIM=1, for Node versions whose internal cluster protocol tend does
// not know): listen(port) asks tend for the slot's socket over the IPC channel and listens on it.
'use strict';
const http = require('http');
const https = require('https');
const net = require('net');

const servers = new Set();
const conns = new WeakMap(); // server → its open connections (TLS sockets for https)
const BUSY = Symbol('tend.busy'); // responses under way on a socket
const LAST = Symbol('tend.last'); // when the socket's last response ended
const SET = Symbol('tend.set');
const READ = Symbol('tend.read'); // bytesRead when the last response ended: more means a request is arriving
const IDLE_MS = 1000;
let draining = false;

// Nothing here runs per request but two property writes: the wrappers below are what a request
// costs, measured against the same app without the preload.
function watch(proto, connectionEvent) {
  const emit = proto.emit;
  proto.emit = function (ev, a, b) {
    if (ev === connectionEvent) track(this, a);
    else if (ev === 'request') {
      if (draining && b) b.shouldKeepAlive = false;
    } else if (ev === 'upgrade' || ev === 'connect') {
      // A WebSocket (or tunnel) is the app's to end, as Node's own close leaves it: never idle.
      untrack.call(b);
    } else if (ev === 'listening') servers.add(this);
    else if (ev === 'close') servers.delete(this);
    return emit.apply(this, arguments);
  };
}
const { ServerResponse } = http;
const gentleOK = typeof ServerResponse.prototype.assignSocket === 'function' &&
  typeof ServerResponse.prototype.detachSocket === 'function';
if (gentleOK) {
  const assign = ServerResponse.prototype.assignSocket;
  const detach = ServerResponse.prototype.detachSocket;
  ServerResponse.prototype.assignSocket = function (socket) {
    if (socket) socket[BUSY] = (socket[BUSY] || 0) + 1;
    return assign.call(this, socket);
  };
  ServerResponse.prototype.detachSocket = function (socket) {
    if (socket) {
      socket[BUSY] = (socket[BUSY] || 1) - 1;
      socket[LAST] = Date.now();
      socket[READ] = socket.bytesRead;
    }
    return detach.call(this, socket);
  };
}
watch(http.Server.prototype, 'connection');
// An https server's requests come on the TLS sockets, not on the sockets it accepted.
if (https.Server.prototype.emit !== http.Server.prototype.emit) watch(https.Server.prototype, 'secureConnection');

function untrack() {
  if (this && this[SET]) this[SET].delete(this);
}

function track(server, socket) {
  if (!gentleOK || !socket) return;
  let set = conns.get(server);
  if (!set) conns.set(server, (set = new Set()));
  set.add(socket);
  socket[SET] = set;
  socket[LAST] = Date.now();
  socket[READ] = 0;
  socket.once('close', untrack);
}

// gentle closes the server's connections that have been idle for IDLE_MS.
function gentle(server) {
  const now = Date.now();
  for (const socket of conns.get(server) || []) {
    // Idle: no response under way, no byte of a next request yet, and so for a second.
    if (!socket[BUSY] && socket.bytesRead === socket[READ] && now - socket[LAST] >= IDLE_MS) socket.destroy();
  }
}

function sweep() {
  for (const s of servers) {
    if (conns.has(s)) gentle(s);
    else if (typeof s.closeIdleConnections === 'function') s.closeIdleConnections();
  }
}

function drain() {
  draining = true;
  for (const s of servers) {
    // server.close() closes every idle connection at once (Node 19+); make it the gentle kind.
    if (conns.has(s)) s.closeIdleConnections = () => gentle(s);
  }
  sweep();
  setInterval(sweep, 100).unref();
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
    drain();
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

// Figures, every 5 s: the event loop's delay (its 99th percentile over those 5 s) and the number
// of active handles, sent to tend as custom metrics (describe, jlist's axm_monitor, /metrics).
// TEND_NODE_METRICS=0 turns them off. Nothing here runs per request; the delay histogram samples
// the loop every 20 ms on a timer that keeps no process alive.
if (typeof process.send === 'function' && process.env.TEND_NODE_METRICS !== '0') {
  let delay = null;
  try {
    delay = require('perf_hooks').monitorEventLoopDelay({ resolution: 20 });
    delay.enable();
  } catch (e) {
    delay = null; // a Node without it (before 11.10)
  }
  const ignore = () => {};
  setInterval(() => {
    if (!process.connected) return;
    if (delay) {
      const ms = Math.round(delay.percentile(99) / 1e4) / 100;
      process.send({ type: 'tend:metric', name: 'event loop delay p99', value: ms, unit: 'ms' }, ignore);
      delay.reset();
    }
    if (typeof process.getActiveResourcesInfo === 'function') {
      process.send({ type: 'tend:metric', name: 'active handles', value: process.getActiveResourcesInfo().length }, ignore);
    }
  }, 5000).unref();
}
