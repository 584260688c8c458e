// Pattern: ecosystem.config.cjs — a CommonJS config kept beside a package.json that says "type": "module".
module.exports = {
  apps: [
    {
      name: 'chat-server',
      script: './src/index.js',
      node_args: '--enable-source-maps',
      env: {
        NODE_ENV: 'development',
        PORT: 5050,
      },
      env_production: {
        NODE_ENV: 'production',
      },
    },
    {
      name: 'chat-presence',
      script: './src/presence.js',
      interpreter_args: ['--max-old-space-size=256'],
      max_memory_restart: '256M',
    },
  ],
};
