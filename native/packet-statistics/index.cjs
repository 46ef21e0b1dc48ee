// The compiled addon (node-gyp rebuild, run by npm install).
module.exports = require('./build/Release/packet_statistics.node');
