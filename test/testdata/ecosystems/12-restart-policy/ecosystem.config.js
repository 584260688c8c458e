// Pattern: restart and shutdown tuning — min_uptime, max_restarts, restart_delay, exp_backoff_restart_delay, kill_timeout, wait_ready, listen_timeout, stop_exit_codes, shutdown_with_message.
module.exports = {
  apps: [
    {
      name: 'payments-api',
      script: './src/server.js',
      instances: 2,
      exec_mode: 'cluster',
      autorestart: true,
      min_uptime: '10s',
      max_restarts: 10,
      restart_delay: 4000,
      max_memory_restart: '512M',

      // Graceful start / stop
      wait_ready: true,
      listen_timeout: 10000,
      kill_timeout: 5000,
      shutdown_with_message: true,
    },
    {
      name: 'payments-consumer',
      script: './src/consumer.js',
      exp_backoff_restart_delay: 100,
      stop_exit_codes: [0],
      kill_timeout: 30000,
      min_uptime: 5000,
      max_restarts: 50,
    },
  ],
};
