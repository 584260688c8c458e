// Pattern: ESM config — ecosystem.config.mjs with `export default { apps: [...] }`.
export default {
  apps: [
    {
      name: 'docs-site',
      script: './dist/server/entry.mjs',
      instances: 'max',
      exec_mode: 'cluster',
      env: {
        HOST: '127.0.0.1',
        PORT: 4321,
        NODE_ENV: 'production',
      },
    },
    {
      name: 'docs-search-indexer',
      script: './dist/indexer.mjs',
      cron_restart: '30 * * * *',
      autorestart: false,
    },
  ],
};
