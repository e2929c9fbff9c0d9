# length.gp: draws make bench's length figures (tests/bench/section_length.py):
# tokens/s against sequence length, log scales, one line per system.
# usage: gnuplot -e "csv='build/bench/length.csv'; svg='build/bench/length.svg'" tests/bench/length.gp
# The CSV's columns: length, batch, fastformerd, onnxruntime, transformer (tokens/s);
# an empty field (a system not measured) leaves a gap.
set terminal svg size 760,460 font "sans,13" background rgb "white"
set output svg
set datafile separator ","
set datafile missing ""
set title "Tokens/s against sequence length (4096 tokens per batch, 1 thread)"
set xlabel "sequence length (tokens)"
set ylabel "tokens/s (log scale)"
set logscale x 2
set logscale y 10
set format y "%.0s%c"
set xtics (64, 128, 256, 512, 1024, 2048, 4096)
set grid xtics ytics lc rgb "#dddddd"
set key bottom left box opaque Left reverse
set autoscale yfix
set offsets graph 0.02, graph 0.02, graph 0.15, graph 0.45
plot csv skip 1 using 1:3 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "fastformerd (C engine)", \
     csv skip 1 using 1:4 with linespoints lw 2 pt 5 lc rgb "#ff7f0e" title "ONNX Runtime, same Fastformer", \
     csv skip 1 using 1:5 with linespoints lw 2 pt 9 lc rgb "#2ca02c" title "PyTorch nn.TransformerEncoder (softmax attention)"
