/** commander accumulator for repeatable options (the first call may have no previous value). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
