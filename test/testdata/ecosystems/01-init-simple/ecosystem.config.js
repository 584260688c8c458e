// Pattern: the file `pm2 init simple` writes — one app, name and script only.
module.exports = {
  apps : [{
    name   : "hello",
    script : "./app.js"
  }]
}
