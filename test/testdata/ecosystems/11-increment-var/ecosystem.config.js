// Pattern: per-instance variables — instances: 4 with increment_var PORT, instance_var INSTANCE_ID, append_env_to_name (no exec_mode given).
module.exports = {
  apps: [{
    name: 'ws-gateway',
    script: './gateway.js',
    instances: 4,
    increment_var: 'PORT',
    instance_var: 'INSTANCE_ID',
    append_env_to_name: true,
    watch: false,
    env: {
      PORT: 3000,
      NODE_ENV: 'development'
    },
    env_production: {
      NODE_ENV: 'production'
    },
    env_staging: {
      NODE_ENV: 'staging',
      PORT: 4000
    }
  }]
};
