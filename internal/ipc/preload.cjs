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
const IDLE_MS = 1000;
let draining = false;

// Nothing here runs per request or per connection on a Node that keeps its servers' connections
// (closeIdleConnections, Node 18.2+): the drain reads that list when it starts. Servers are
// learnt at listen(), once. The per-request wrappers this replaced cost about 4 % of a hello
// world's requests/s (bench workload 14).
const keepsConnections = typeof http.Server.prototype.closeIdleConnections === 'function';
const isHTTP = (s) => s instanceof http.Server || s instanceof https.Server;
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function () {
  if (isHTTP(this) && !servers.has(this)) {
    servers.add(this);
    this.once('close', () => servers.delete(this));
    if (!keepsConnections) trackByHand(this);
  }
  return listen.apply(this, arguments);
};

// connectionsOf returns the server's own list of connections (Node's ConnectionsList, kept
// from its listen on), or undefined on a Node without one.
function connectionsOf(server) {
  const k = Object.getOwnPropertySymbols(server).find((s) => s.description === 'http.server.connections');
  return k && server[k] && typeof server[k].all === 'function' ? server[k] : undefined;
}

// trackByHand keeps the connections of a server on a Node without its own list: a set, from the
// connection event (the secure one for https), less the upgraded ones.
const byHand = new WeakMap();
function trackByHand(server) {
  const set = new Set();
  byHand.set(server, set);
  const forget = function () { set.delete(this); };
  server.on(server instanceof https.Server ? 'secureConnection' : 'connection', (socket) => {
    set.add(socket);
    socket.once('close', forget);
  });
  const untrack = (req, socket) => set.delete(socket);
  server.on('upgrade', untrack);
  server.on('connect', untrack);
}

function sockets(server) {
  const list = connectionsOf(server);
  if (list) return list.all().map((parser) => parser.socket).filter(Boolean);
  return [...(byHand.get(server) || [])];
}

// Every open connection's activity since the drain began: a socket is idle once no response is
// under way on it (_httpMessage) and it has read no byte for IDLE_MS, and only then is it closed.
// Closing a connection the moment the drain starts (as Node's server.close() does) races a
// client that is sending its next request on it, and that request fails.
const seen = new WeakMap();
function gentle(server) {
  const now = Date.now();
  for (const socket of sockets(server)) {
    const last = seen.get(socket);
    if (socket._httpMessage || !last || last.read !== socket.bytesRead) {
      seen.set(socket, { read: socket.bytesRead, since: now });
    } else if (now - last.since >= IDLE_MS) {
      socket.destroy();
    }
  }
}

function sweep() {
  for (const s of servers) gentle(s);
}

function drain() {
  draining = true;
  for (const s of servers) {
    // From now on every response says "Connection: close": busy keep-alive connections never
    // close by themselves.
    s.prependListener('request', (req, res) => { res.shouldKeepAlive = false; });
    // server.close() closes every idle connection at once (Node 19+); make it the gentle kind,
    // where the connections can be seen (else Node's own, as without the preload).
    const own = s.closeIdleConnections;
    s.closeIdleConnections = () => {
      if (connectionsOf(s) || byHand.has(s)) gentle(s);
      else if (typeof own === 'function') own.call(s);
    };
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
  const listenNow = net.Server.prototype.listen;
  const counts = new Map();
  net.Server.prototype.listen = function (...args) {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
    const a0 = args[0];
    let port, host;
    if (a0 !== null && typeof a0 === 'object') {
      if (a0.path !== undefined || a0.fd !== undefined || a0._handle || a0.handle || a0.exclusive) {
        return listenNow.apply(this, cb ? [...args, cb] : args);
      }
      port = a0.port;
      host = a0.host;
    } else if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0)) || a0 === undefined) {
      port = a0;
      host = typeof args[1] === 'string' ? args[1] : undefined;
    } else {
      return listenNow.apply(this, cb ? [...args, cb] : args); // a unix path
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
      listenNow.call(this, handle, cb);
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
