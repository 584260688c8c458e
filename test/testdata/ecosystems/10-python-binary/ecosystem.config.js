// Pattern: non-Node apps — Python with interpreter python3 + interpreter_args -u, binaries with interpreter "none", a .sh picked by extension.
module.exports = {
  apps: [
    {
      name: 'price-scraper',
      cwd: './scraper',
      script: 'main.py',
      interpreter: 'python3',
      interpreter_args: '-u',
      restart_delay: 5000,
      env: {
        PYTHONUNBUFFERED: '1',
        SCRAPE_INTERVAL: '300'
      }
    },
    {
      name: 'dashboard-api',
      cwd: './dashboard',
      script: 'python3',
      args: '-m uvicorn app:app --host 127.0.0.1 --port 8000',
      interpreter: 'none',
      env: {
        PYTHONPATH: '.'
      }
    },
    {
      name: 'metrics-exporter',
      script: './bin/metrics-exporter',
      args: ['--listen', ':9102', '--log-level', 'info'],
      interpreter: 'none',
      exec_mode: 'fork',
      autorestart: true
    },
    {
      name: 'heartbeat',
      script: './tools/heartbeat.sh',
      max_restarts: 3
    }
  ]
};
