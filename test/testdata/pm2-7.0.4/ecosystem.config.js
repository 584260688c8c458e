module.exports = { apps: [{ name: 'api', script: './app.js', instances: 2, args: ['--port', '3000'], node_args: ['--max-old-space-size=100'], env: { PORT: 3000, DEBUG: false, NAME: "it's" } }] };
