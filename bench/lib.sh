# Shared by the benchmarks that time commands one by one (sourced after
# tests/lib.sh): a millisecond clock, the load average and a median.

# ms T0: milliseconds since T0 (from date +%s%N).
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
# load: the load average (1, 5, 15 minutes); the machine may be shared.
load() { cut -d' ' -f1-3 /proc/loadavg; }
# median: of the numbers on stdin, one per line (the mean of the middle two for an
# even count).
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
