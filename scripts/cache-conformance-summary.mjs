// Counts a results file of the HTTP cache test suite (http-cache-tests) the
// way cache-tests.fyi shows it: a test whose depends_on did not pass (pass or
// "yes") is a dependency failure whatever its own result, a setup failure
// (the harness could not talk to the origin) is counted apart, and the rest
// by the test's kind. Informational "check" tests are not in the four
// columns of the README's table.
//
//   node scripts/cache-conformance-summary.mjs SUITE_DIR RESULTS.json [--surrogate]
//
// --surrogate adds the Surrogate-Control tests (the suite's CLI runs them; the
// published reverse-proxy results include them too).
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const [suiteDir, resultsFile] = process.argv.slice(2)
if (!suiteDir || !resultsFile) {
  console.error('usage: cache-conformance-summary.mjs SUITE_DIR RESULTS.json [--surrogate] [--json]')
  process.exit(2)
}
const load = async rel => (await import(pathToFileURL(path.join(suiteDir, rel)).href)).default
const suites = [...await load('tests/index.mjs')]
if (process.argv.includes('--surrogate')) suites.push(await load('tests/surrogate-control.mjs'))
const results = JSON.parse(fs.readFileSync(resultsFile, 'utf8'))

const tests = new Map()
for (const suite of suites) for (const t of suite.tests) tests.set(t.id, t)

const memo = new Map()
function verdict (id) {
  if (memo.has(id)) return memo.get(id)
  const test = tests.get(id)
  const result = results[id]
  let v
  if (test === undefined || result === undefined) {
    v = 'untested'
  } else if ((test.depends_on || []).some(dep => !['pass', 'yes'].includes(verdict(dep)))) {
    v = 'dependency'
  } else if (Array.isArray(result) && result[0] === 'Setup') {
    v = result[1] === 'retry' ? 'retry' : 'setup'
  } else if (Array.isArray(result) && result[0] !== 'Assertion') {
    v = 'harness'
  } else if (test.kind === 'check') {
    v = result === true ? 'yes' : 'no'
  } else if (test.kind === 'optimal') {
    v = result === true ? 'pass' : 'optimal'
  } else {
    v = result === true ? 'pass' : 'fail'
  }
  memo.set(id, v)
  return v
}

const counts = {}
const byVerdict = {}
for (const id of tests.keys()) {
  const v = verdict(id)
  counts[v] = (counts[v] || 0) + 1
  ;(byVerdict[v] = byVerdict[v] || []).push(id)
}
const n = k => counts[k] || 0
if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ counts, tests: byVerdict }, null, 2))
} else {
  console.log('| pass | required failures | optimal behaviour missed | dependency failures |')
  console.log(`| ${n('pass')} | ${n('fail')} | ${n('optimal')} | ${n('dependency')} |`)
  console.log(`also: setup failures ${n('setup')}, retries ${n('retry')}, harness errors ${n('harness')}, checks yes ${n('yes')} / no ${n('no')}, untested ${n('untested')}`)
  for (const v of ['fail', 'setup', 'retry', 'harness']) {
    if (byVerdict[v]) console.log(`${v}: ${byVerdict[v].join(' ')}`)
  }
}
