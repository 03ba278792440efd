/**
 * Readings from Linux's /proc for `deno task bench`: the CPU time of one
 * process, the CPU time the whole machine spent busy, and the load average.
 * Together they give the outside load: what other processes used while a
 * bench window ran.
 *
 * @module
 */

/** Linux USER_HZ: /proc counts CPU time in 1/100 s. */
export const CLK_TCK = 100;

/**
 * CPU seconds (user + system, every thread) a process has used, from
 * `/proc/<pid>/stat`, in 10 ms ticks: good for windows of seconds only.
 *
 * @param pid A process id, or "self".
 */
export function processCpuSeconds(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
}

/** CPU seconds the machine has spent busy (all CPUs), from /proc/stat. */
export function machineBusySeconds(): number {
  const line = Deno.readTextFileSync("/proc/stat").split("\n", 1)[0]!;
  // cpu user nice system idle iowait irq softirq steal guest guest_nice;
  // guest time is already counted in user.
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(
    /\s+/,
  ).map(Number) as number[];
  return (user! + nice! + system! + irq! + softirq! + steal!) / CLK_TCK;
}

/** The 1-, 5- and 15-minute load averages. */
export function loadAverage(): number[] {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).map(
    Number,
  );
}
