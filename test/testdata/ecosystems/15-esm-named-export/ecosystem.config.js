// Pattern: ESM ecosystem.config.js in a "type": "module" package using a named `export const apps` (the shape PM2's require() can read).
export const apps = [
  {
    name: 'reports-api',
    script: './server.js',
    instances: 1,
    exec_mode: 'fork',
    env: {
      NODE_ENV: 'production',
      PORT: 7070,
    },
  },
  {
    name: 'reports-renderer',
    script: './renderer.js',
    max_memory_restart: '768M',
  },
];
