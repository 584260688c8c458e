// Pattern: computed config — path.join(__dirname, ...), process.env.WEB_CONCURRENCY || 'max' and process.env.X || 'default'.
const path = require('path');

const ROOT = __dirname;
const LOG_DIR = path.join(ROOT, 'logs');

module.exports = {
  apps: [
    {
      name: 'billing',
      script: path.join(ROOT, 'dist', 'main.js'),
      cwd: ROOT,
      instances: process.env.WEB_CONCURRENCY || 'max',
      exec_mode: 'cluster',
      out_file: path.join(LOG_DIR, 'billing-out.log'),
      error_file: path.join(LOG_DIR, 'billing-err.log'),
      env: {
        NODE_ENV: process.env.NODE_ENV || 'production',
        PORT: process.env.BILLING_PORT || 8080,
        DATABASE_URL: process.env.BILLING_DATABASE_URL || 'postgres://localhost:5432/billing',
      },
    },
    {
      name: 'billing-scheduler',
      script: path.resolve(__dirname, 'dist/scheduler.js'),
      instances: 1,
      env: {
        NODE_ENV: process.env.NODE_ENV || 'production',
        TZ: process.env.BILLING_TZ || 'UTC',
      },
    },
  ],
};
