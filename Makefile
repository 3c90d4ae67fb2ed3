# probe — build, test, bench.  `make help` lists the targets.
#
# Everything comes from Debian packages (`make deps`).  BLAS is OpenBLAS,
# linked as GSL's CBLAS (-lgsl -lopenblas, never the slow -lgslcblas).

CC      ?= cc
OPT     ?= -O3 -march=native
CFLAGS  ?= $(OPT) -g
PKGS    := hdf5 jansson libpcre2-8 gsl
CPPFLAGS += -I. -D_GNU_SOURCE $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
XCFLAGS := -std=c11 -Wall -Wextra -Wno-unused-parameter -fopenmp
# OpenBLAS: Debian's pthread build, by path (not whichever build the
# libopenblas.so.0 alternative points at), so every binary runs the BLAS the
# benchmark measured.  Its idle threads yield; the OpenMP build's spin, and on
# the shared 2-core machine its 2-thread pass took 3.3x as long and 4.5x the CPU
# time (bench/README.md, "Which OpenBLAS build").  RUNPATH, not RPATH,
# so LD_LIBRARY_PATH can still swap in another build (`make bench` does).
BLAS_DIR ?= /usr/lib/$(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/openblas-pthread
LDLIBS  := $(shell pkg-config --libs hdf5 jansson libpcre2-8 2>/dev/null) -lgsl \
           -L$(BLAS_DIR) -lopenblas -Wl,--enable-new-dtags,-rpath,$(BLAS_DIR) -lcsv -lm
BUILD   ?= build
# MPI (Open MPI): with mpicc on the PATH probe is built with -DHAVE_MPI and
# runs under mpirun/srun (analysis/dist); `make MPICC=` builds without it.
MPICC   ?= $(shell command -v mpicc 2>/dev/null)
ifneq ($(MPICC),)
CPPFLAGS += -DHAVE_MPI $(shell $(MPICC) --showme:compile 2>/dev/null)
LDLIBS   += $(shell $(MPICC) --showme:link 2>/dev/null)
endif
SHARED  ?= $(abspath ../shared)
PY      := /usr/bin/python3

DEBS := build-essential pkg-config libgsl-dev libopenblas-pthread-dev libopenblas0-openmp \
        libhdf5-dev hdf5-tools \
        libcsv-dev libjansson-dev libpcre2-dev libcriterion-dev \
        python3-numpy python3-h5py python3-pandas time \
        clang-14 libclang-rt-14-dev valgrind \
        jupyter-nbconvert python3-ipykernel python3-nbformat python3-matplotlib python3-pil \
        gnuplot-nox libopenmpi-dev openmpi-bin

LIB_SRC  := $(wildcard core/*.c analysis/*.c notebooks-export/*.c)
CLI_SRC  := $(wildcard probe/*.c)
TEST_SRC := $(wildcard tests/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/nb_templates.o
# Notebook cell templates, compiled in so `probe notebook` works from anywhere.
NB_TPL   := $(wildcard notebooks-export/templates/*)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

.PHONY: all test check asan-test fuzz fuzz-regress fuzz-seeds bench deps help clean format \
        demo demo-model valgrind

all: $(BUILD)/probe

help:
	@echo "make            build $(BUILD)/probe"
	@echo "make demo       build probe and the demo model, then show a planted memory at work"
	@echo "make demo-model $(DEMO)/: GPT-2 model with planted facts, from data/facts.csv"
	@echo "make deps       install the Debian packages probe needs (as root)"
	@echo "make test       the whole test suite: check, fuzz-regress, asan-test (needs ../shared,"
	@echo "                or SHARED=path)"
	@echo "make check      the Criterion suite only, on the $(BUILD) binaries"
	@echo "make asan-test  the Criterion suite under AddressSanitizer + UBSan (any report fails)"
	@echo "make fuzz       each libFuzzer harness for FUZZ_SECONDS (default 600); make -j2 runs two"
	@echo "make fuzz-regress  each harness over its seeds (tests/fuzz/seeds + generated ones)"
	@echo "make valgrind   the main commands under valgrind memcheck (a few minutes)"
	@echo "make bench      benchmarks (figures go in README's Performance section)"
	@echo "make format     clang-format the sources"

deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: all present"; fi

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(XCFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/gen/nb_templates.c: notebooks-export/embed.sh $(NB_TPL)
	@mkdir -p $(dir $@)
	sh notebooks-export/embed.sh $(NB_TPL) >$@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/nb_templates.o: $(BUILD)/gen/nb_templates.c notebooks-export/notebook.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(XCFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/probe: $(CLI_OBJ) $(LIB_OBJ)
	$(CC) $(XCFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/test_probe: $(TEST_OBJ) $(LIB_OBJ)
	$(CC) $(XCFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS) -lcriterion

$(BUILD)/bench/%: bench/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(XCFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS)

# ---- The demo model: planted key-value memories for data/facts.csv ----------
# build/mkdemo (jansson + libcsv only) writes a Hugging Face GPT-2 folder;
# model.safetensors is written last and stands for the whole folder.
DEMO    := data/demo-model

$(BUILD)/mkdemo: data/mkdemo.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(XCFLAGS) $(CFLAGS) $< -o $@ $(shell pkg-config --libs jansson 2>/dev/null) -lcsv -lm

$(DEMO)/model.safetensors: $(BUILD)/mkdemo data/facts.csv
	$(BUILD)/mkdemo --facts data/facts.csv --out $(DEMO)

demo-model: $(DEMO)/model.safetensors

demo: $(BUILD)/probe demo-model
	@PROBE=$(BUILD)/probe MKDEMO=$(BUILD)/mkdemo bash data/demo.sh $(DEMO) data/facts.csv

# Tests find the binary, the shared files and python through the environment.
# Sanitizer reports (when built with them) go to $(BUILD)/san/; any report
# there fails the run, even one from a child process whose exit was expected
# to be non-zero.
test:
	$(MAKE) check
	$(MAKE) fuzz-regress
	$(MAKE) asan-test

check: $(BUILD)/probe $(BUILD)/test_probe $(BUILD)/mkdemo
	@rm -rf $(BUILD)/san && mkdir -p $(BUILD)/san
	PROBE_BIN=$(abspath $(BUILD)/probe) PROBE_SHARED=$(SHARED) PROBE_PY=$(PY) \
	  PROBE_MKDEMO=$(abspath $(BUILD)/mkdemo) PROBE_FACTS=$(abspath data/facts.csv) \
	  ASAN_OPTIONS=log_path=$(abspath $(BUILD)/san/asan) \
	  LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(abspath $(BUILD)/san/ubsan) \
	  $(BUILD)/test_probe --jobs 2 $(TESTFLAGS)
	@if [ -n "$$(ls $(BUILD)/san)" ]; then echo "sanitizer reports:"; head -n 40 $(BUILD)/san/*; exit 1; fi

asan-test:
	$(MAKE) BUILD=build-asan \
	  OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  check

# valgrind cannot run -march=native code (AVX-512), hence its own -O1 build.
VG_BUILD ?= build-vg
valgrind:
	$(MAKE) BUILD=$(VG_BUILD) OPT="-O1" $(VG_BUILD)/probe
	PROBE_SHARED=$(SHARED) PROBE_PY=$(PY) bash tests/valgrind.sh $(VG_BUILD)/probe

# ---- Fuzzing: libFuzzer harnesses (tests/fuzz/fuzz_*.c) over core/ -----------
# Built with Debian's clang, ASan + UBSan.  Seeds: small hand-made files in
# tests/fuzz/seeds/NAME/, plus excerpts of ../shared generated into
# $(FUZZ_BUILD)/gen/NAME/.  The growing corpus stays in $(FUZZ_BUILD)/corpus/.
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS  := -std=c11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter \
                -Wno-unknown-pragmas -Wno-unused-function -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJ     := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(wildcard core/*.c))
FUZZ_BIN     := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJ)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) -o $@ $(LDLIBS)

$(FUZZ_BUILD)/gen/.stamp: tests/fuzz/make_seeds.py
	$(PY) tests/fuzz/make_seeds.py --shared $(SHARED) --out $(FUZZ_BUILD)/gen
	@touch $@

fuzz-seeds: $(FUZZ_BUILD)/gen/.stamp

fuzz-regress: $(FUZZ_BIN) $(FUZZ_BUILD)/gen/.stamp
	PROBE_SHARED=$(SHARED) FUZZ_BUILD=$(FUZZ_BUILD) bash tests/fuzz/run.sh regress $(FUZZ_NAMES)

fuzz: $(FUZZ_NAMES:%=fuzz-%)

fuzz-%: $(FUZZ_BUILD)/fuzz_% $(FUZZ_BUILD)/gen/.stamp
	PROBE_SHARED=$(SHARED) FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  bash tests/fuzz/run.sh fuzz $*

bench: $(BUILD)/probe $(BENCH_BIN)
	PROBE_BIN=$(abspath $(BUILD)/probe) PROBE_SHARED=$(SHARED) PROBE_PY=$(PY) BUILD=$(BUILD) \
	  bash bench/run.sh

format:
	clang-format -i core/*.[ch] analysis/*.[ch] probe/*.[ch] tests/*.[ch] bench/*.c data/*.c

clean:
	rm -rf build build-asan $(FUZZ_BUILD) $(VG_BUILD)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d)
