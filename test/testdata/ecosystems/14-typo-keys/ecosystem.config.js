// Pattern: hand-written config with typo'd keys (instnaces, autorestrat, max_memroy_restart, ...) that PM2 silently drops.
module.exports = {
  apps: [
    {
      name: 'notifier',
      script: './notifier.js',
      instnaces: 2,
      exec_mode: 'cluster',
      autorestrat: true,
      max_memroy_restart: '200M',
      watch: true,
      watch_ignore: ['node_modules', 'logs'],
      env: {
        NODE_ENV: 'development'
      },
      env_prodcution: {
        NODE_ENV: 'production'
      }
    },
    {
      name: 'notifier-digest',
      script: './digest.js',
      cron_restrat: '0 8 * * 1',
      autorestart: false,
      log_date_fromat: 'YYYY-MM-DD HH:mm:ss'
    }
  ]
};
