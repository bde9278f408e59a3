#!/usr/bin/env node
// Size limits of the source tree (issue #15): no file over 450 lines, no function over 120 lines,
// in every package's src/ (the simulator and the demo included). Prints each excess and exits 1.
// Usage: node scripts/check-size.mjs [--report]   (--report lists the 15 longest functions too)
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const MAX_FILE_LINES = 450;
const MAX_FUNCTION_LINES = 120;
const root = new URL('..', import.meta.url).pathname;
const sourceRoots = ['packages/gateway/src', 'packages/sim/src', 'packages/demo/src'];

function* sourceFiles(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* sourceFiles(path);
    else if (/\.c?ts$/.test(name) && !name.endsWith('.d.ts')) yield path;
  }
}

function functionName(node, file) {
  if (node.name && ts.isIdentifier(node.name)) return node.name.text;
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText(file);
  return '(anonymous)';
}

const excesses = [];
const functions = [];
for (const sourceRoot of sourceRoots) {
  for (const path of sourceFiles(join(root, sourceRoot))) {
    const text = readFileSync(path, 'utf8');
    const rel = relative(root, path);
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > MAX_FILE_LINES) excesses.push(`${rel}: ${lines} lines (limit ${MAX_FILE_LINES})`);
    const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
    const visit = (node) => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const start = file.getLineAndCharacterOfPosition(node.getStart(file)).line;
        const end = file.getLineAndCharacterOfPosition(node.getEnd()).line;
        const length = end - start + 1;
        const where = `${rel}:${start + 1} ${functionName(node, file)}`;
        functions.push({ where, length });
        if (length > MAX_FUNCTION_LINES) excesses.push(`${where}: ${length} lines (limit ${MAX_FUNCTION_LINES})`);
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
  }
}

if (process.argv.includes('--report')) {
  for (const { where, length } of functions.sort((a, b) => b.length - a.length).slice(0, 15)) {
    console.log(`${String(length).padStart(5)}  ${where}`);
  }
}
if (excesses.length > 0) {
  console.error(`size limits exceeded (files ≤ ${MAX_FILE_LINES} lines, functions ≤ ${MAX_FUNCTION_LINES} lines):`);
  for (const excess of excesses) console.error(`  ${excess}`);
  process.exit(1);
}
console.log('size limits hold');
