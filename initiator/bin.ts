#!/usr/bin/env node
import { exitQuietlyOnClosedStdout } from '../shared/cli.js';
import { main } from './cli.js';

exitQuietlyOnClosedStdout();
process.exitCode = await main(process.argv.slice(2));
