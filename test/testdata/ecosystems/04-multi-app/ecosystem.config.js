// Pattern: several apps in one file — an HTTP API, a queue worker, and cron-style jobs (cron_restart + autorestart: false).
module.exports = {
  apps: [
    {
      name: 'ledger-api',
      script: './api/index.js',
      instances: 2,
      exec_mode: 'cluster',
      max_memory_restart: '500M',
      env: {
        NODE_ENV: 'production',
        PORT: 4000
      }
    },
    {
      name: 'ledger-worker',
      script: './worker/index.js',
      args: '--queue=emails --concurrency=5',
      max_memory_restart: '300M',
      env: {
        NODE_ENV: 'production'
      }
    },
    {
      name: 'ledger-nightly-report',
      script: './jobs/nightly-report.js',
      instances: 1,
      exec_mode: 'fork',
      cron_restart: '0 2 * * *', // every night at 02:00
      autorestart: false,
      watch: false
    },
    {
      name: 'ledger-cleanup',
      script: './jobs/cleanup.sh',
      interpreter: 'bash',
      cron_restart: '*/15 * * * *',
      autorestart: false
    }
  ]
};
