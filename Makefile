# fastformerd: one non-recursive Makefile. Variants build into their own
# directories: release -> build/, asan -> build/asan/, tsan -> build/tsan/.
#   make            build/fastformerd and build/fastformer-cli
#   make run        install missing Debian packages, build, serve the default models
#                   (news stores in ./var/, gitignored)
#   make test       install missing Debian packages, build, run unit + integration tests
#   make asan       unit + integration tests under ASan+UBSan;  make tsan: unit tests under TSan
#   make format-check / make format / make clean / make deps / make fixtures
# Output is one line per file built (CC model/kernels.c, AR build/libmodel.a,
# LD build/fastformerd); make V=1 prints the full commands. Warnings and errors
# always show.

VARIANT ?= release
CC ?= cc
PKG_CONFIG ?= pkg-config
PYTHON ?= /usr/bin/python3
PREFIX ?= /usr/local

PKGS := openblas jansson yaml-0.1 libmicrohttpd libsystemd libutf8proc gnutls sqlite3 libpq

# Debian packages: building, testing, and what `make deps` installs.
DEB_BUILD := gcc make pkg-config libopenblas-dev libjansson-dev libyaml-dev libmicrohttpd-dev \
             libsystemd-dev libutf8proc-dev libgnutls28-dev libsqlite3-dev libpq-dev
DEB_TEST := libcmocka-dev python3 python3-pytest python3-requests prometheus systemd curl openssl postgresql
DEB_PKGS := $(DEB_BUILD) $(DEB_TEST)
# What CI's further checks need (make asan/tsan/fuzz/analyze/format-check/stress/docker-check): `make deps-ci`.
DEB_CI := clang clang-format libfuzzer-14-dev libclang-rt-14-dev cppcheck clang-tidy valgrind debootstrap docker.io

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wvla -Werror
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -g $(WARN) $(LAYER_INC) -MMD -MP
# The layering, enforced: each top folder sees only its own headers and those
# below it. model/ is the engine; server/ (the daemon) and cli/ (the CLI) are
# two programs on it, so model/ cannot include server/, and cli/ cannot reach
# into the daemon. LAYER_INC picks the set by the first folder of the source.
INC_model := -Imodel
INC_server := -Iserver -Imodel
INC_cli := -Icli -Imodel
INC_tests := -Iserver -Icli -Imodel
LAYER_INC = $(INC_$(firstword $(subst /, ,$<)))

ifeq ($(VARIANT),release)
  B := build
  VARIANT_CFLAGS := -O3 -fno-math-errno
  VARIANT_LDFLAGS :=
else ifeq ($(VARIANT),asan)
  B := build/asan
  VARIANT_CFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  VARIANT_LDFLAGS := -fsanitize=address,undefined
else ifeq ($(VARIANT),tsan)
  B := build/tsan
  CC := clang
  VARIANT_CFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=thread -DKERNELS_NO_CLONES
  VARIANT_LDFLAGS := -fsanitize=thread
else
  $(error unknown VARIANT '$(VARIANT)': use release, asan or tsan)
endif

# Quiet rules: $(QUIET_CC)$(CC) ... prints "CC <source>" instead of the command.
V ?= 0
ifneq ($(V),1)
  QUIET_CC = @printf 'CC %s\n' $<;
  QUIET_AR = @printf 'AR %s\n' $@;
  QUIET_LD = @printf 'LD %s\n' $@;
endif

PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(BASE_CFLAGS) $(VARIANT_CFLAGS) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(VARIANT_LDFLAGS) $(LDFLAGS)
LIBS = $(PKG_LIBS) -lpthread -lm

MODEL_SRC := $(wildcard model/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
CLI_SRC := $(filter-out cli/cli.c,$(wildcard cli/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)

MODEL_OBJ := $(MODEL_SRC:%.c=$(B)/obj/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(B)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(B)/obj/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

DAEMON := $(B)/fastformerd
CLI := $(B)/fastformer-cli

.PHONY: data eval deps-ci all run test unit integration asan tsan fuzz fuzz-bins analyze format format-check clean deps fixtures bench install uninstall docker-check
.DEFAULT_GOAL := all

all: $(DAEMON) $(CLI)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(QUIET_CC)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/libmodel.a: $(MODEL_OBJ)
	@mkdir -p $(dir $@)
	$(QUIET_AR)rm -f $@ && ar rcs $@ $^

$(B)/libserver.a: $(SERVER_OBJ)
	@mkdir -p $(dir $@)
	$(QUIET_AR)rm -f $@ && ar rcs $@ $^

$(DAEMON): $(B)/obj/server/main.o $(B)/libserver.a $(B)/libmodel.a
	$(QUIET_LD)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(CLI): $(B)/obj/cli/cli.o $(CLI_OBJ) $(B)/libmodel.a
	$(QUIET_LD)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/libserver.a $(B)/libmodel.a
	@mkdir -p $(dir $@)
	$(QUIET_LD)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

# The GEMM micro-kernels stay instrumented under ASan+UBSan but at -O2: at -O1
# their checked loads run 3-4x slower than at -O2, and the daemon's integration
# tests (deadlines under load) need the engine near its usual speed.
ifeq ($(VARIANT),asan)
$(patsubst %,$(B)/obj/model/gemm_%.o,plain avx2 avx512): VARIANT_CFLAGS += -O2
endif

# test_constructors fails each allocation of a constructor in turn: its link
# wraps the allocator (calls from model/ and server/ objects go through it).
$(B)/tests/test_constructors: ALL_LDFLAGS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc \
  -Wl,--wrap=aligned_alloc,--wrap=strdup,--wrap=free

-include $(MODEL_OBJ:.o=.d) $(SERVER_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_SRC:tests/unit/%.c=$(B)/obj/tests/unit/%.d)
-include $(B)/obj/server/main.d $(B)/obj/cli/cli.d
# server/openapi.c embeds this file with .incbin, which -MMD cannot see.
$(B)/obj/server/openapi.o: server/openapi.json

# ---- dependencies ---------------------------------------------------------
# Installs the missing Debian packages when run as root; otherwise prints the
# exact command and fails.
deps-ci:
	$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(DEB_CI)"

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	  else \
	    echo "deps: missing Debian packages. Run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

# ---- running --------------------------------------------------------------
run: deps
	$(MAKE) --no-print-directory all
	OPENBLAS_NUM_THREADS=1 ./$(DAEMON) --config conf/fastformerd.yaml --state-dir var

# ---- tests ----------------------------------------------------------------
test: deps
	$(MAKE) --no-print-directory all unit-bins
	tests/run_tests.sh $(B)

unit-bins: $(UNIT_BIN)

unit: $(UNIT_BIN)
	tests/run_tests.sh --unit-only $(B)

# The unit tests, then the integration suite against the ASan+UBSan daemon and CLI.
asan:
	$(MAKE) --no-print-directory VARIANT=asan all unit-bins
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 tests/run_tests.sh build/asan

tsan:
	$(MAKE) --no-print-directory VARIANT=tsan unit

# ---- fuzzing: clang + libFuzzer under ASan+UBSan, in build/fuzz/ ---------------
# make fuzz [FUZZ_SECONDS=30]: builds every tests/fuzz/fuzz_<target>.c and runs
# each for FUZZ_SECONDS on a copy of tests/fuzz/corpus/<target>/ (so new inputs
# never dirty the tree). Fails on any crash, sanitizer report, leak or hang; the
# input is kept in build/fuzz/artifacts/. The libraries are rebuilt with coverage
# and server/http.c is replaced by the socket-free tests/fuzz/fake_http.c.
FUZZ_SECONDS ?= 30
FUZZ_B := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = $(BASE_CFLAGS) -Itests/fuzz -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link \
              $(FUZZ_SAN) $(PKG_CFLAGS) $(CFLAGS)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TARGETS := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_B)/obj/%.o,$(MODEL_SRC) \
                $(filter-out server/http.c,$(SERVER_SRC)) tests/fuzz/fake_http.c)

$(FUZZ_B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(QUIET_CC)clang $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_B)/libfuzz.a: $(FUZZ_LIB_OBJ)
	$(QUIET_AR)rm -f $@ && ar rcs $@ $^

$(FUZZ_B)/fuzz_%: $(FUZZ_B)/obj/tests/fuzz/fuzz_%.o $(FUZZ_B)/libfuzz.a
	$(QUIET_LD)clang -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(LIBS)

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_SRC:%.c=$(FUZZ_B)/obj/%.d)
$(FUZZ_B)/obj/server/openapi.o: server/openapi.json
.SECONDARY: $(FUZZ_SRC:%.c=$(FUZZ_B)/obj/%.o)

fuzz-bins: $(FUZZ_TARGETS:%=$(FUZZ_B)/fuzz_%)

fuzz: fuzz-bins
	tests/fuzz/run.sh $(FUZZ_B) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# ---- static analysis: cppcheck + clang-tidy over model/, server/ and cli/ -------
# First, no function longer than 120 lines (tools/check_function_length.py) and
# no include cycle between modules (tools/check_include_cycles.py).
# The checks, and why each disabled one is off, are in .clang-tidy and
# .cppcheck-suppressions. Any finding fails. ANALYZE_JOBS clang-tidy processes.
ANALYZE_JOBS ?= 2
ANALYZE_SRC = $(wildcard model/*.c server/*.c cli/*.c)
ANALYZE_FLAGS = -std=c11 -D_GNU_SOURCE -Imodel -Iserver -Icli $(PKG_CFLAGS)

analyze:
	$(PYTHON) tools/check_function_length.py --max 120 --allow tools/function_length_allow.txt \
	  model server cli
	$(PYTHON) tools/check_include_cycles.py model server cli
	cppcheck -q --std=c11 --enable=warning,style,performance,portability --inline-suppr \
	  --suppressions-list=.cppcheck-suppressions --error-exitcode=1 \
	  -D_GNU_SOURCE -D__x86_64__ -Imodel -Iserver -Icli model server cli
	printf '%s\n' $(ANALYZE_SRC) | \
	  xargs -P $(ANALYZE_JOBS) -n 4 sh -c 'clang-tidy -quiet "$$@" -- $(ANALYZE_FLAGS)' clang-tidy
	@echo "analyze: cppcheck and clang-tidy clean"

# ---- stress: load, faults, signals, slow clients, soak (tests/stress) --------
# make stress [STRESS_SECONDS=8] [STRESS_SOAK_SECONDS=45] [STRESS_VALGRIND_SECONDS=15]
# About 4 minutes with the defaults; e.g. STRESS_SECONDS=30 STRESS_SOAK_SECONDS=600
# for the issue's long runs. The soak runs build/asan/fastformerd (built here)
# and build/fastformerd under valgrind. Figures go to build/stress-figures.txt.
.PHONY: stress
stress: all
	$(MAKE) --no-print-directory VARIANT=asan build/asan/fastformerd
	rm -f build/stress-figures.txt
	FASTFORMERD=$(CURDIR)/build/fastformerd FASTFORMERD_ASAN=$(CURDIR)/build/asan/fastformerd \
	  STRESS_FIGURES=$(CURDIR)/build/stress-figures.txt OPENBLAS_NUM_THREADS=1 \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/stress
	@cat build/stress-figures.txt

# ---- data and default models ---------------------------------------------------
# make data [DATA_SRC=DIR] [DATA_SETS="imdb agnews ..."]: fetches each data set from
# its official source (or copies it from DIR/<dir>/, a local copy with the same
# layout), checks it against the sha256 sums pinned in tools/make_data.sh, and
# prepares the splits under data/. MovieLens is committed (datasets/).
# make eval: the C metrics of models/* on their test splits, next to their cards'.
DATA_SETS ?=
# Fine Foods is prepared by R (tools/prepare_finefoods.py runs Rscript).
DEB_DATA := r-base-core
data:
	-@$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_DATA)"
	tools/make_data.sh $(DATA_SETS)

eval: all
	-@$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_DATA)"
	@for f in imdb/test.jsonl agnews/test_titles.jsonl movielens/news.tsv pros-cons/test.jsonl fine-foods/test.jsonl; do \
	  [ -f data/$$f ] || { tools/make_data.sh imdb agnews movielens pros-cons fine-foods && break; }; done
	OPENBLAS_NUM_THREADS=2 tools/eval_models.sh $(CLI) models data

# Regenerates the golden fixtures from the PyTorch reference (needs Debian's python3-torch).
fixtures:
	OPENBLAS_NUM_THREADS=1 $(PYTHON) tools/make_fixtures.py tests/fixtures

# ---- benchmarks (never part of `make test`) -----------------------------------
# make bench [BENCH_QUICK=1] [BENCH_ONLY=ort,length,...]: tests/bench/run_bench.py
# writes build/bench/results.md, results.json, length.csv and length.svg.
# bench_engine wraps gemm_run and cblas_sgemm to replay the engine's exact products.
# ONNX Runtime (the CPU library ships in the npm package) goes into build/bench/ort;
# --ignore-scripts skips its install script, which downloads GPU libraries from a
# host that cannot be reached. When npm or the install fails, the bench still runs
# and its ONNX Runtime rows say why.
BENCH_ENGINE := $(B)/bench_engine
DEB_BENCH := wrk gnuplot-nox python3-torch
ORT_VERSION := 1.30.0
ORT_DIR := build/bench/ort
ORT_STAMP := $(ORT_DIR)/.installed-$(ORT_VERSION)

$(BENCH_ENGINE): $(B)/obj/tests/bench/bench_engine.o $(B)/libmodel.a
	$(QUIET_LD)$(CC) $(ALL_LDFLAGS) -Wl,--wrap=cblas_sgemm,--wrap=gemm_run -o $@ $^ $(LIBS)

-include $(B)/obj/tests/bench/bench_engine.d

$(ORT_STAMP):
	@mkdir -p $(ORT_DIR)
	@rm -f $(ORT_DIR)/.installed-*
	@echo "bench: npm install --ignore-scripts onnxruntime-node@$(ORT_VERSION) into $(ORT_DIR)"
	@if npm install --prefix $(ORT_DIR) --ignore-scripts --no-audit --no-fund --save-exact \
	    onnxruntime-node@$(ORT_VERSION) >$(ORT_DIR)/npm.log 2>&1; then touch $@; \
	  else echo "bench: npm install failed (see $(ORT_DIR)/npm.log): no ONNX Runtime rows"; fi

bench:
	-@$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(DEB_BENCH)"
	@$(MAKE) --no-print-directory all $(BENCH_ENGINE)
	-@$(MAKE) --no-print-directory $(ORT_STAMP)
	OPENBLAS_NUM_THREADS=1 $(PYTHON) tests/bench/run_bench.py --build $(B) --ort-dir $(ORT_DIR) \
	  $(if $(BENCH_ONLY),--only $(BENCH_ONLY))

# ---- installation -----------------------------------------------------------
# make install [PREFIX=/usr/local] [SYSCONFDIR=/etc] [DESTDIR=]: binaries, the
# systemd unit, the default config (model paths pointing at the installed
# models) and the default models.
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
MODELDIR = $(PREFIX)/share/fastformerd/models
MODEL_DIRS = $(patsubst %/,%,$(dir $(wildcard models/*/config.json)))

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/fastformerd $(DESTDIR)$(MODELDIR)
	install -m 0755 $(DAEMON) $(CLI) $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/share/doc/fastformerd
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/fastformerd/README.md
	install -m 0644 deploy/README.md $(DESTDIR)$(PREFIX)/share/doc/fastformerd/DEPLOY.md
	sed -e 's|/usr/bin/fastformerd|$(PREFIX)/bin/fastformerd|' \
	    -e 's|/usr/share/doc/fastformerd/|$(PREFIX)/share/doc/fastformerd/|' \
	    -e 's|/etc/fastformerd/|$(SYSCONFDIR)/fastformerd/|' \
	    deploy/systemd/fastformerd.service > $(DESTDIR)$(UNITDIR)/fastformerd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/fastformerd.service
	sed -e 's|\(path: *\)\.\./models/|\1$(MODELDIR)/|' -e 's|\(news_catalog: *\)\.\./models/|\1$(MODELDIR)/|' \
	    conf/fastformerd.yaml > $(DESTDIR)$(SYSCONFDIR)/fastformerd/fastformerd.yaml
	chmod 0644 $(DESTDIR)$(SYSCONFDIR)/fastformerd/fastformerd.yaml
	for d in $(MODEL_DIRS); do \
	  install -d $(DESTDIR)$(MODELDIR)/$$(basename $$d) && \
	  install -m 0644 $$d/* $(DESTDIR)$(MODELDIR)/$$(basename $$d)/ || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/fastformerd $(DESTDIR)$(PREFIX)/bin/fastformer-cli
	rm -f $(DESTDIR)$(UNITDIR)/fastformerd.service
	rm -f $(DESTDIR)$(SYSCONFDIR)/fastformerd/fastformerd.yaml
	-rmdir $(DESTDIR)$(SYSCONFDIR)/fastformerd 2>/dev/null
	rm -rf $(DESTDIR)$(PREFIX)/share/fastformerd $(DESTDIR)$(PREFIX)/share/doc/fastformerd

# Builds the Dockerfile with the Docker engine (Debian's docker.io; dockerd is started if none
# answers) on a debootstrapped debian:bookworm-slim, runs the image and checks it end to end.
docker-check:
	$(PYTHON) deploy/docker/check.py

# ---- style ----------------------------------------------------------------
C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(C_FILES)
format-check:
	clang-format --dry-run --Werror $(C_FILES)

clean:
	rm -rf build
