# The two commands: `make run` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: run test venv lint format bench clean model

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,train,fleet]'
	touch $(STAMP)

# The demo: the daemon in user mode, in the foreground, on fixtures/demo/crontab; it
# prints the commands to inspect it, and each mail as it lands in .run/mail/.
run: $(STAMP)
	fixtures/demo/run $(BIN)

# Two pytest workers: about a third of the serial suite is tests waiting for real minute
# boundaries (daemons, Debian's cron), and another worker runs the rest meanwhile
# (456 s -> 238 s on 2 cores, docs/benchmarks.md). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy smartcron
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy smartcron

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info

# ---- install / uninstall (man pages, systemd units, completions: see contrib/README.md)
# make install [PREFIX=/usr/local] [DESTDIR=]
# * DESTDIR empty: a venv at $(PREFIX)/lib/smartcron (needs python3-venv), `pip install .`
#   into it, and $(PREFIX)/bin/{smartcron,smartcrontab,smartcronctl} symlinked to its bin/.
# * DESTDIR set (staging for a package): a venv built there would carry DESTDIR in its
#   shebangs, so `pip install --target $(PREFIX)/lib/smartcron/site` instead, with small
#   launchers in bin/ (contrib/write-launcher) that run $(PYTHON) -I with that directory
#   first on sys.path. $(PYTHON) must then be the interpreter of the target system.
# PIP_INSTALL_FLAGS: extra pip flags (tests use --no-deps --no-build-isolation).
# /etc/smartcron/smartcron.toml is never written: only smartcron.toml.example.
SC_COMMANDS := smartcron smartcrontab smartcronctl
SC_MODULE_smartcron := smartcron.cli.daemon
SC_MODULE_smartcrontab := smartcron.cli.crontab
SC_MODULE_smartcronctl := smartcron.cli.ctl
bindir ?= $(PREFIX)/bin
sbindir ?= $(PREFIX)/sbin
sc_libdir ?= $(PREFIX)/lib/smartcron
mandir ?= $(PREFIX)/share/man
systemdsystemunitdir ?= $(PREFIX)/lib/systemd/system
systemduserunitdir ?= $(PREFIX)/lib/systemd/user
bashcompdir ?= $(PREFIX)/share/bash-completion/completions
zshcompdir ?= $(PREFIX)/share/zsh/site-functions
sysconfdir ?= /etc
PIP_INSTALL_FLAGS ?=

.PHONY: install install-python install-data uninstall completion

install: install-python install-data
	@echo "installed; as root: systemctl daemon-reload, then see smartcron(8), SWITCHING FROM CRON"

install-python:
ifeq ($(strip $(DESTDIR)),)
	$(PYTHON) -m venv $(sc_libdir)
	$(sc_libdir)/bin/python -m pip install --quiet --upgrade $(PIP_INSTALL_FLAGS) .
	install -d $(bindir)
	for c in $(SC_COMMANDS); do ln -sfn $(sc_libdir)/bin/$$c $(bindir)/$$c; done
else
	$(PYTHON) -m pip install --quiet --upgrade --target $(DESTDIR)$(sc_libdir)/site \
		$(PIP_INSTALL_FLAGS) .
	rm -rf $(DESTDIR)$(sc_libdir)/site/bin
	install -d $(DESTDIR)$(bindir)
	python=$$(command -v $(PYTHON)) && for c in $(SC_COMMANDS); do \
		case $$c in smartcron) m=$(SC_MODULE_smartcron) ;; \
		smartcrontab) m=$(SC_MODULE_smartcrontab) ;; *) m=$(SC_MODULE_smartcronctl) ;; esac; \
		contrib/write-launcher "$$python" $(sc_libdir)/site $$m $(DESTDIR)$(bindir)/$$c; \
	done
endif

install-data:
	install -d $(DESTDIR)$(mandir)/man1 $(DESTDIR)$(mandir)/man5 $(DESTDIR)$(mandir)/man8
	install -m 644 man/smartcrontab.1 man/smartcronctl.1 $(DESTDIR)$(mandir)/man1/
	install -m 644 man/smartcrontab.5 $(DESTDIR)$(mandir)/man5/
	install -m 644 man/smartcron.8 $(DESTDIR)$(mandir)/man8/
	install -d $(DESTDIR)$(systemdsystemunitdir) $(DESTDIR)$(systemduserunitdir)
	sed 's|/usr/local/bin/smartcron|$(bindir)/smartcron|' contrib/smartcron.service \
		> $(DESTDIR)$(systemdsystemunitdir)/smartcron.service
	sed 's|/usr/local/bin/smartcron|$(bindir)/smartcron|' contrib/smartcron-user.service \
		> $(DESTDIR)$(systemduserunitdir)/smartcron.service
	chmod 644 $(DESTDIR)$(systemdsystemunitdir)/smartcron.service \
		$(DESTDIR)$(systemduserunitdir)/smartcron.service
	install -d $(DESTDIR)$(bashcompdir) $(DESTDIR)$(zshcompdir)
	for c in $(SC_COMMANDS); do \
		install -m 644 contrib/completion/$$c.bash $(DESTDIR)$(bashcompdir)/$$c; \
		install -m 644 contrib/completion/_$$c $(DESTDIR)$(zshcompdir)/_$$c; \
	done
	install -d $(DESTDIR)$(PREFIX)/share/smartcron/models
	install -m 644 models/model.onnx models/model.json $(DESTDIR)$(PREFIX)/share/smartcron/models/
	install -d $(DESTDIR)$(PREFIX)/share/smartcron/profiles
	install -m 644 smartcron/profiles/*.yaml $(DESTDIR)$(PREFIX)/share/smartcron/profiles/
	install -d $(DESTDIR)$(sbindir)
	install -m 755 contrib/migrate-from-cron $(DESTDIR)$(sbindir)/smartcron-migrate-from-cron
	install -d $(DESTDIR)$(sysconfdir)/smartcron $(DESTDIR)$(sysconfdir)/logrotate.d
	install -m 644 contrib/smartcron.toml.example \
		$(DESTDIR)$(sysconfdir)/smartcron/smartcron.toml.example
	test -e $(DESTDIR)$(sysconfdir)/logrotate.d/smartcron || \
		install -m 644 contrib/logrotate/smartcron $(DESTDIR)$(sysconfdir)/logrotate.d/smartcron

# Removes what install wrote; an edited logrotate file, the config and state are kept.
uninstall:
	for c in $(SC_COMMANDS); do rm -f $(DESTDIR)$(bindir)/$$c \
		$(DESTDIR)$(bashcompdir)/$$c $(DESTDIR)$(zshcompdir)/_$$c; done
	rm -rf $(DESTDIR)$(sc_libdir)
	rm -f $(DESTDIR)$(mandir)/man1/smartcrontab.1 $(DESTDIR)$(mandir)/man1/smartcronctl.1 \
		$(DESTDIR)$(mandir)/man5/smartcrontab.5 $(DESTDIR)$(mandir)/man8/smartcron.8
	rm -f $(DESTDIR)$(systemdsystemunitdir)/smartcron.service \
		$(DESTDIR)$(systemduserunitdir)/smartcron.service
	rm -f $(DESTDIR)$(sbindir)/smartcron-migrate-from-cron
	rm -rf $(DESTDIR)$(PREFIX)/share/smartcron
	rm -f $(DESTDIR)$(sysconfdir)/smartcron/smartcron.toml.example
	-rmdir $(DESTDIR)$(sysconfdir)/smartcron 2>/dev/null
	! cmp -s contrib/logrotate/smartcron $(DESTDIR)$(sysconfdir)/logrotate.d/smartcron || \
		rm -f $(DESTDIR)$(sysconfdir)/logrotate.d/smartcron

# Regenerate the shell completion scripts with click's own mechanism.
completion: $(STAMP)
	for c in $(SC_COMMANDS); do \
		var=_$$(echo $$c | tr a-z A-Z)_COMPLETE; \
		env $$var=bash_source $(BIN)/$$c > contrib/completion/$$c.bash; \
		env $$var=zsh_source $(BIN)/$$c > contrib/completion/_$$c; \
	done

# The shipped default model (models/): cron on the laptop fixtures over the 28 training
# days (the same split as bench-ai), recorded with --history, then trained.
MODEL_DB := $(or $(TMPDIR),/tmp)/smartcron-model-history.db
model: $(STAMP)
	rm -f $(MODEL_DB) $(MODEL_DB)-wal $(MODEL_DB)-shm
	$(BIN)/smartcronctl simulate --crontab fixtures/crontabs/laptop.crontab \
	  --trace fixtures/traces/laptop-8w.csv.gz --world fixtures/worlds/laptop.yaml \
	  --policy cron --to 2026-02-02T00:00:00+00:00 --history $(MODEL_DB) >/dev/null
	$(BIN)/smartcronctl train --history $(MODEL_DB) --out models --seed 0
	rm -f models/model.pkl $(MODEL_DB) $(MODEL_DB)-wal $(MODEL_DB)-shm

# The crontab(1) drop-in: `crontab ...` runs `smartcrontab ...` (smartcrontab on PATH).
.PHONY: install-compat
install-compat:
	install -D -m 0755 compat/crontab $(DESTDIR)$(PREFIX)/bin/crontab
