import type { Instruction } from '../frontend/instructions.js';
import { commandLine } from '../steps/meta.js';

/**
 * `created_by` as BuildKit writes it: RUN shows the build args it saw
 * (`RUN |2 A=1 B=2 /bin/sh -c make # buildkit`), file-system steps end in
 * `# buildkit`, metadata steps are the instruction text.
 */
export function createdBy(instr: Instruction, args: Array<{ name: string; value: string; hidden: boolean }>, shell?: string[]): string {
  switch (instr.kind) {
    case 'RUN': {
      const visible = args.filter((a) => !a.hidden);
      const prefix = visible.length ? `|${visible.length} ${visible.map((a) => `${a.name}=${a.value}`).join(' ')} ` : '';
      const cmd = commandLine(instr.cmd, shell).join(' ');
      return `RUN ${prefix}${cmd} # buildkit`;
    }
    case 'COPY':
    case 'ADD': {
      const flags = [instr.from ? `--from=${instr.from}` : '', instr.chown ? `--chown=${instr.chown}` : '', instr.chmod ? `--chmod=${instr.chmod}` : '', instr.link ? '--link' : '']
        .filter(Boolean)
        .join(' ');
      return `${instr.kind} ${flags ? `${flags} ` : ''}${[...instr.sources, instr.dest].join(' ')} # buildkit`;
    }
    case 'WORKDIR':
      return `WORKDIR ${instr.path}`;
    case 'CMD':
    case 'ENTRYPOINT':
      return `${instr.kind} ${instr.cmd.form === 'exec' ? JSON.stringify(instr.cmd.args) : `["${commandLine(instr.cmd, shell).join('" "')}"]`}`;
    case 'ENV':
    case 'LABEL':
      return `${instr.kind} ${instr.pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`;
    default:
      return instr.original.replace(/^\s*\S+/, instr.kind);
  }
}
