// Pattern: Next.js under PM2 — next's CLI file as the script with args "start", and a second site run through `npm start`.
module.exports = {
  apps: [
    {
      name: 'shop-web',
      script: 'node_modules/next/dist/bin/next',
      args: 'start -p 3000',
      instances: 2,
      exec_mode: 'cluster',
      autorestart: true,
      watch: false,
      max_memory_restart: '1G',
      env: {
        NODE_ENV: 'production',
        NEXT_TELEMETRY_DISABLED: 1
      }
    },
    {
      name: 'shop-docs',
      cwd: './docs',
      script: 'npm',
      args: 'start',
      env: {
        NODE_ENV: 'production',
        PORT: 3001
      }
    }
  ]
};
