// Pattern: classic `pm2 init` / docs file — env + env_production, cluster on every CPU, and a deploy section.
module.exports = {
  apps : [{
    name: 'storefront-api',
    script: 'server.js',

    // Options reference: https://pm2.keymetrics.io/docs/usage/application-declaration/
    args: 'one two',
    instances: 'max',
    exec_mode: 'cluster',
    autorestart: true,
    watch: false,
    max_memory_restart: '1G',
    env: {
      NODE_ENV: 'development'
    },
    env_production: {
      NODE_ENV: 'production'
    }
  }],

  deploy : {
    production : {
      user : 'deploy',
      host : ['203.0.113.10', '203.0.113.11'],
      ref  : 'origin/main',
      repo : 'git@github.com:example-org/storefront-api.git',
      path : '/var/www/storefront-api',
      'pre-deploy-local': '',
      'post-deploy' : 'npm install && pm2 reload ecosystem.config.js --env production',
      'pre-setup': ''
    },
    staging : {
      user : 'deploy',
      host : 'staging.example.com',
      ref  : 'origin/develop',
      repo : 'git@github.com:example-org/storefront-api.git',
      path : '/var/www/storefront-api-staging',
      ssh_options: 'StrictHostKeyChecking=no',
      'post-deploy' : 'npm ci && pm2 startOrRestart ecosystem.config.js --env staging',
      env  : {
        NODE_ENV: 'staging'
      }
    }
  }
};
