// Front-end benchmark: parse + plan of a generated 5,000-instruction Dockerfile
// (every instruction kind, continuations, heredocs, mounts, several stages).
// Goal: median under 100 ms. Run: npm run build && node bench/frontend.mjs [instructions] [runs]
import { performance } from 'node:perf_hooks';
import { parseDockerfile, runChecks } from '../dist/frontend/index.js';
import { planBuild } from '../dist/plan/index.js';

const target = Number(process.argv[2] ?? 5000);
const runs = Number(process.argv[3] ?? process.env.KILN_BENCH_RUNS ?? 15);

function generate(n) {
  const lines = ['# syntax=docker/dockerfile:1', 'ARG BASE=alpine:3.20', 'ARG VERSION=1.0'];
  let count = 2;
  let stage = 0;
  const body = [
    (i) => [`RUN --mount=type=cache,target=/root/.cache,id=c${i} --mount=type=secret,id=s${i % 7} \\`, `    echo step ${i} \\`, '    # a comment inside the continuation', `    && make -j4 target${i}`],
    (i) => [`COPY --chown=app:app --chmod=0644 src/${i}.go "lib/${i}.go" /src/`],
    (i) => [`ENV K${i}=v${i} PATH=/opt/${i}:$PATH`],
    (i) => [`LABEL org.example.step${i}="value ${i}"`],
    (i) => [`ARG A${i}=\${VERSION}-${i}`],
    (i) => [`WORKDIR /work/${i}`],
    (i) => ['RUN <<EOF', `echo heredoc ${i}`, `echo "$HOME"`, 'EOF'],
    (i) => [`EXPOSE ${8000 + (i % 1000)}/tcp`],
    (i) => [`CMD ["/bin/app", "--step", "${i}"]`],
    (i) => [`HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:${i}/ || exit 1`],
  ];
  let i = 0;
  while (count < n) {
    if (i % 500 === 0) {
      lines.push('', `# stage ${stage} builds part ${stage}`, stage === 0 ? 'FROM $BASE AS s0' : `FROM s${stage - 1} AS s${stage}`);
      if (stage > 0) lines.push(`COPY --from=s${stage - 1} /out /in`);
      count += stage > 0 ? 2 : 1;
      stage++;
    }
    lines.push(...body[i % body.length](i));
    count++;
    i++;
  }
  return { text: lines.join('\n') + '\n', instructions: count };
}

const { text, instructions } = generate(target);
if (process.env.DUMP) (await import('node:fs')).writeFileSync(process.env.DUMP, text);
const opts = { buildArgs: { VERSION: '2.0' }, targetPlatform: { os: 'linux', architecture: 'amd64' }, buildPlatform: { os: 'linux', architecture: 'amd64' } };
const time = (fn) => {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
};
// CPU time of this process (all its threads, GC included): tells a busy machine from slow code.
const cpuMs = (fn) => {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Warm up the JIT the way a long-lived process would be; the first cold run is reported too.
const cold = time(() => planBuild(parseDockerfile(text, { file: 'Dockerfile' }), opts));
const parse = [];
const plan = [];
const total = [];
const checks = [];
const cpu = [];
for (let r = 0; r < runs; r++) {
  cpu.push(cpuMs(() => planBuild(parseDockerfile(text, { file: 'Dockerfile' }), opts)));
  let parsed;
  const tp = time(() => { parsed = parseDockerfile(text, { file: 'Dockerfile' }); });
  const tl = time(() => planBuild(parsed, opts));
  parse.push(tp);
  plan.push(tl);
  total.push(tp + tl);
  checks.push(time(() => runChecks(parsed, { buildArgs: opts.buildArgs })));
}
const fmt = (ms) => `${ms.toFixed(1)} ms`;
console.log(`Dockerfile: ${instructions} instructions, ${text.split('\n').length} lines, ${(text.length / 1024).toFixed(0)} KiB; ${runs} runs`);
console.log(`parse            median ${fmt(median(parse))}`);
console.log(`plan             median ${fmt(median(plan))}`);
console.log(`parse + plan     median ${fmt(median(total))}   (first, cold: ${fmt(cold)}; goal < 100 ms)`);
console.log(`checks           median ${fmt(median(checks))}`);
console.log(`parse + plan CPU median ${fmt(median(cpu))}   (load average ${(await import('node:os')).loadavg()[0].toFixed(1)})`);
const ms = (v) => Math.round(v * 10) / 10;
console.log(JSON.stringify({ instructions, runs, parsePlanMedianMs: ms(median(total)), coldMs: ms(cold), checksMedianMs: ms(median(checks)), cpuMedianMs: ms(median(cpu)), goalMs: 100 }));
