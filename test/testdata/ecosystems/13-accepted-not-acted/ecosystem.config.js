// Pattern: keys PM2 accepts (or people expect it to) that a drop-in may not act on — vizion, source_map_support, force, post_update, pmx, windowsHide, kill_retry_time, filter_env, env_file, uid/gid.
module.exports = {
  apps: [
    {
      name: 'inventory-sync',
      script: './sync.js',
      env_file: '.env',
      filter_env: ['SECRET_'],
      uid: 'www-data',
      gid: 'www-data',
      vizion: false,
      source_map_support: true,
      force: true,
      post_update: ['npm install', 'echo "inventory-sync updated"'],
      pmx: false,
      automation: false,
      windowsHide: true,
      kill_retry_time: 200,
      env: {
        NODE_ENV: 'production',
        SYNC_INTERVAL: 60
      }
    }
  ]
};
