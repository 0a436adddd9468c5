# Scaling plot of bench/run.sh row 5 (called by report.py with
# datafile='...scaling.dat', outfile='...scaling.png' and probes='10,000').
# Columns: inflight engine_cpu_ms floor_cpu_ms engine_rss_kb_per_probe
#          floor_rss_kb_per_conn engine_wall_ms
set terminal pngcairo size 1200,480 font ",10"
set output outfile
set multiplot layout 1,2 title sprintf("smtp-probe engine vs floor, %s probes per point against the lean fault server (ECDSA P-256)", probes)
set logscale x 10
set xlabel "probes in flight (one event loop)"
set grid
set yrange [0:*]
set ylabel "client CPU per probe (ms)"
set title "CPU per probe"
set key bottom right
plot datafile using 1:2 with linespoints lw 2 pt 7 title "engine", \
     datafile using 1:3 with lines lw 2 dt 2 title "floor (sequential)", \
     datafile using 1:($3*1.2) with lines lw 2 dt 3 lc rgb "red" title "target 1.2x floor"
set ylabel "RSS per in-flight probe (KiB)"
set title "Memory per in-flight probe"
set key top right
plot datafile using 1:4 with linespoints lw 2 pt 7 title "engine", \
     datafile using 1:5 with lines lw 2 dt 2 title "floor, per open connection", \
     datafile using 1:($5*1.5) with lines lw 2 dt 3 lc rgb "red" title "target 1.5x floor"
unset multiplot
