# vitamin.c build. `make` builds build/libvitamin.a, build/libvitamin.so and the
# CLI build/vitamin; `make test` runs the whole suite (see tests/run.sh).
# Every .c under src/ is part of the library, every tools/*.c part of the CLI,
# every tests/unit/<room>/test_*.c its own test binary build/tests/test_* (the
# rooms mirror src/) — add a file, it is built.
CC      ?= gcc
OPT     ?= -O3
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c17 -fno-math-errno -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -fPIC -fopenmp -march=x86-64-v2 -Iinclude -Isrc
# `make WERROR=1` (what tests/run.sh and CI build): warnings are errors, plus
# shadowed names and functions without a prototype in a header.
ifeq ($(WERROR),1)
CFLAGS  += -Werror -Wshadow -Wmissing-prototypes
endif
LDLIBS  += -lwebp -lpng -ljpeg -lutf8proc -lcurl -lz -lm -fopenmp -lpthread
# Sanitizer builds (`make asan`, `make tsan`) set SANITIZE for compiling and linking.
CFLAGS  += $(SANITIZE)
LDLIBS  += $(SANITIZE)

BUILD   := build
LIB_SRC := $(shell find src -name '*.c' | sort)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_SRC := $(sort $(wildcard tools/*.c))
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(sort $(wildcard tests/unit/*/test_*.c))
TEST_BIN := $(addprefix $(BUILD)/tests/,$(notdir $(TEST_SRC:.c=)))
vpath test_%.c $(sort $(dir $(TEST_SRC)))
# Helper programs that tests drive from Python (dump a checkpoint, tokenize a file, ...).
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/testtools/%)
# Benchmark drivers (bench/run.py calls them).
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
# libFuzzer targets, built with clang + ASan/UBSan against an instrumented library.
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -Iinclude -Isrc -fopenmp
FUZZ_OBJ := $(LIB_SRC:%.c=$(BUILD)/fuzzobj/%.o)

# `make mpi`: the same CLI built with Open MPI (mpicc, -DVITAMIN_MPI) into
# build/mpi/, for data-parallel training and embedding under mpirun / srun.
# The default build has no MPI dependency.
ifeq ($(MPI),1)
CC      := mpicc
CFLAGS  += -DVITAMIN_MPI
endif

.PHONY: all test clean fuzz mpi asan tsan sanitized install print-ldlibs
all: $(BUILD)/libvitamin.a $(BUILD)/libvitamin.so $(BUILD)/vitamin $(TEST_BIN) $(TOOL_BIN) $(BENCH_BIN)
fuzz: $(FUZZ_BIN)
# The link libraries, for setup.py (the Python extension links what the CLI links).
print-ldlibs:
	@echo $(LDLIBS)
mpi:
	$(MAKE) MPI=1 BUILD=$(BUILD)/mpi $(BUILD)/mpi/vitamin $(BUILD)/mpi/testtools/dist_loss_check

# `make asan` / `make tsan`: the library, CLI, unit tests and test drivers built
# with AddressSanitizer + UBSan / ThreadSanitizer into build/asan, build/tsan
# (same -march and SIMD variants as the shipped build, -O1);
# tests/test_sanitizers.py runs the unit tests, an embedding and a short
# training run under them.
asan:
	$(MAKE) BUILD=$(BUILD)/asan OPT=-O1 SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" sanitized
tsan:
	$(MAKE) BUILD=$(BUILD)/tsan OPT=-O1 SANITIZE="-fsanitize=thread -fno-omit-frame-pointer" sanitized
sanitized: $(BUILD)/libvitamin.a $(BUILD)/vitamin $(TEST_BIN) $(BUILD)/testtools/api_threads

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libvitamin.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Versioned shared library: libvitamin.so.$(SOVERSION) is the soname (bumped
# when the C API breaks), libvitamin.so links to it for -lvitamin.
SOVERSION := 0
VERSION   := 0.1.0
$(BUILD)/libvitamin.so.$(VERSION): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libvitamin.so.$(SOVERSION) -o $@ $^ $(LDLIBS)
$(BUILD)/libvitamin.so: $(BUILD)/libvitamin.so.$(VERSION)
	ln -sf libvitamin.so.$(VERSION) $(BUILD)/libvitamin.so.$(SOVERSION)
	ln -sf libvitamin.so.$(SOVERSION) $@

$(BUILD)/vitamin: $(CLI_OBJ) $(BUILD)/libvitamin.a
	$(CC) -o $@ $(CLI_OBJ) $(BUILD)/libvitamin.a $(LDLIBS)

$(BUILD)/tests/%: %.c $(BUILD)/libvitamin.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libvitamin.a $(LDLIBS)

$(BUILD)/testtools/%: tests/tools/%.c $(BUILD)/libvitamin.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libvitamin.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libvitamin.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libvitamin.a $(LDLIBS)

$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(LDLIBS)

# `make install PREFIX=/usr/local` (DESTDIR honoured): the CLI, both
# libraries, the header and a pkg-config file. The BPE vocabulary is built
# into the library, so nothing else is needed at run time.
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
install: $(BUILD)/libvitamin.a $(BUILD)/libvitamin.so $(BUILD)/libvitamin.so.$(VERSION) $(BUILD)/vitamin
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BUILD)/vitamin $(DESTDIR)$(PREFIX)/bin/vitamin
	install -m 644 $(BUILD)/libvitamin.a $(DESTDIR)$(LIBDIR)/libvitamin.a
	install -m 755 $(BUILD)/libvitamin.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libvitamin.so.$(VERSION)
	ln -sf libvitamin.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libvitamin.so.$(SOVERSION)
	ln -sf libvitamin.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libvitamin.so
	install -m 644 include/vitamin.h $(DESTDIR)$(PREFIX)/include/vitamin.h
	printf 'prefix=%s\nlibdir=%s\nincludedir=%s/include\n\nName: vitamin\nDescription: ViTamin CLIP inference and training in C\nVersion: %s\nLibs: -L$${libdir} -lvitamin\nLibs.private: %s\nCflags: -I$${includedir}\n' \
	    '$(PREFIX)' '$(LIBDIR)' '$(PREFIX)' '$(VERSION)' '$(LDLIBS)' > $(DESTDIR)$(LIBDIR)/pkgconfig/vitamin.pc

test: all
	bash tests/run.sh

clean:
	rm -rf $(BUILD)

# The BPE vocabulary is assembled into the library (.incbin, see the file).
$(BUILD)/obj/src/io/text/tokenizer_vocab.o $(BUILD)/fuzzobj/src/io/text/tokenizer_vocab.o: share/bpe_simple_vocab_16e6.txt.gz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d)

# Keep the instrumented objects between fuzz builds.
.SECONDARY:
