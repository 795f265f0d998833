"""FMA's settings: one table of defaults and checks, read through ``fma_settings``, checked at start-up; the
environment read only by the settings modules; implementations registered in one place."""

import ast
import re

import pytest

from fma_core.exceptions import ConfigurationError
from fma_core.settings import AGGREGATOR_DEFAULTS
from fma_django_connectors.conf import SETTINGS, check_settings, environment_settings, fma_settings
from tests.cold_starts import REPOSITORY, cold_start, last_error_line


class TestStartUp:
    """A wrong FMA setting stops the start, naming the setting and its value."""

    @pytest.mark.parametrize(
        ("settings_text", "message"),
        [
            ('FMA_UPLOAD_MAX_BYTES = "lots"', "FMA_UPLOAD_MAX_BYTES must be a whole number, not 'lots'"),
            ("FMA_DOWNLOAD_LIFETIME_SECONDS = 0", "FMA_DOWNLOAD_LIFETIME_SECONDS must be positive, not 0"),
            ("FMA_SCHEDULE_EXPRESSION = 60", "FMA_SCHEDULE_EXPRESSION must be a string, not 60"),
            (
                'FMA_SCHEDULR = "none"',
                "Unknown FMA setting(s) FMA_SCHEDULR='none'; known: see fma_django_connectors/conf.py SETTINGS",
            ),
            (
                'INSTALLED_PACKAGES = ["fma_django_connectors"]',
                "INSTALLED_PACKAGES was removed: implementations are registered by "
                "fma_django_connectors/registrations.py at start-up",
            ),
            (
                'AGGREGATOR_SETTINGS = {"claim_lease_secs": 5}',
                "AGGREGATOR_SETTINGS has unknown keys ['claim_lease_secs']; allowed keys: "
                f"{sorted(AGGREGATOR_DEFAULTS)}",
            ),
            (
                'FMA_SCHEDULER = "cron"',
                "Unknown scheduler 'cron' (setting FMA_SCHEDULER); registered: eventbridge-scheduler, none",
            ),
        ],
        ids=["wrong type", "out of range", "not text", "unknown name", "removed", "unknown key", "unregistered"],
    )
    def test_a_wrong_setting_stops_the_start(self, tmp_path, settings_text, message):
        process = cold_start(tmp_path, settings_text)

        assert process.returncode == 1
        assert last_error_line(process) == f"fma_core.exceptions.ConfigurationError: {message}"

    def test_a_wrong_value_in_the_environment_stops_the_start(self, tmp_path):
        process = cold_start(tmp_path, environment={"FMA_AWS_CONNECT_TIMEOUT": "2s"})

        assert process.returncode == 1
        assert last_error_line(process) == (
            "fma_core.exceptions.ConfigurationError: FMA_AWS_CONNECT_TIMEOUT must be a number, not '2s'"
        )

    def test_values_from_the_environment_reach_the_core(self, tmp_path):
        probe = (
            "import service_initialization\n"
            "from fma_core.aws import client_config\n"
            "config = client_config()\n"
            "print(config.connect_timeout, config.read_timeout, config.retries['total_max_attempts'])\n"
        )
        environment = {"FMA_AWS_CONNECT_TIMEOUT": "0.5", "FMA_AWS_READ_TIMEOUT": "3", "FMA_AWS_MAX_ATTEMPTS": "4"}
        process = cold_start(tmp_path, environment=environment, code=probe)

        assert process.returncode == 0, process.stderr
        assert process.stdout.split() == ["0.5", "3.0", "4"]


class TestChecks:
    @pytest.mark.parametrize(
        ("name", "value", "message"),
        [
            ("FMA_AWS_CONNECT_TIMEOUT", "2s", "FMA_AWS_CONNECT_TIMEOUT must be a number, not '2s'"),
            ("FMA_AWS_READ_TIMEOUT", "0", "FMA_AWS_READ_TIMEOUT must be positive, not '0'"),
            ("FMA_AWS_BEST_EFFORT_TIMEOUT", "-1", "FMA_AWS_BEST_EFFORT_TIMEOUT must be positive, not '-1'"),
            ("FMA_AWS_MAX_ATTEMPTS", "2.5", "FMA_AWS_MAX_ATTEMPTS must be a whole number, not '2.5'"),
            ("FMA_LOCAL_SWEEP_SECONDS", "nan", "FMA_LOCAL_SWEEP_SECONDS must be a number, not 'nan'"),
            ("FMA_SECRETS_CACHE_TTL", "five minutes", "FMA_SECRETS_CACHE_TTL must be a number, not 'five minutes'"),
            ("FMA_SECRETS_CACHE_TTL", -1, "FMA_SECRETS_CACHE_TTL must be at least 0, not -1"),
            ("FMA_RESPONSE_MAX_BYTES", True, "FMA_RESPONSE_MAX_BYTES must be a whole number, not True"),
            ("AWS_REGION", 1, "AWS_REGION must be a string, not 1"),
            (
                "API_SERVICE_SETTINGS",
                {"secrets_name": "FMA_ONE"},
                "API_SERVICE_SETTINGS[\"secrets_name\"] must be a list of secret ids, not 'FMA_ONE'",
            ),
        ],
    )
    def test_a_bad_value_is_refused_naming_setting_and_value(self, name, value, message):
        with pytest.raises(ConfigurationError) as raised:
            check_settings({name: value})

        assert str(raised.value) == message

    def test_text_from_the_environment_becomes_the_number_code_reads(self, settings):
        settings.FMA_LOCAL_SWEEP_SECONDS = "5"
        settings.FMA_UPLOAD_MAX_BYTES = "1000"

        assert (fma_settings.FMA_LOCAL_SWEEP_SECONDS, fma_settings.FMA_UPLOAD_MAX_BYTES) == (5.0, 1000)

    def test_a_name_outside_the_table_is_no_fma_setting(self):
        with pytest.raises(AttributeError, match="'FMA_UPLOAD_MAX_BYTE' is not an FMA setting"):
            _ = fma_settings.FMA_UPLOAD_MAX_BYTE


class TestDefaults:
    def test_the_defaults_pass_their_own_checks(self):
        check_settings({})

    def test_the_readme_documents_the_defaults_of_the_table(self):
        """The README's table of FMA settings: the same names, defaults and environment flags as ``SETTINGS``."""
        readme = (REPOSITORY / "README.md").read_text()
        section = readme[readme.index("## Settings\n") : readme.index("## Testing locally")]
        rows = re.findall(r"^\| `([A-Z_]+)` \| `([^`]+)` \| (env)? ?\|", section, flags=re.MULTILINE)
        documented = {name: (ast.literal_eval(default), env == "env") for name, default, env in rows}

        assert documented == {name: (setting.default, setting.from_environment) for name, setting in SETTINGS.items()}

    def test_a_settings_module_sets_an_fma_setting_only_to_change_it(self):
        """Defaults live in the table alone: a settings module repeating one would be a second copy."""
        folder = REPOSITORY / "api_service" / "federated_learning_project"
        repeated = []
        for module in sorted(folder.glob("settings_*.py")):
            for node in ast.parse(module.read_text()).body:
                if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        name = getattr(target, "id", None)
                        if name in SETTINGS and _literal(node.value) == SETTINGS[name].default != {}:
                            repeated.append(f"{module.name}: {name}")

        assert repeated == []

    def test_the_aggregator_defaults_are_the_cores(self, settings):
        settings.AGGREGATOR_SETTINGS = {}

        assert fma_settings.AGGREGATOR_SETTINGS == AGGREGATOR_DEFAULTS


class TestEnvironment:
    def test_only_settings_the_table_marks_are_taken_from_the_environment(self):
        environ = {"FMA_AWS_READ_TIMEOUT": "3", "FMA_UPLOAD_MAX_BYTES": "1", "FMA_ADMIN_SECRET_ID": "fma/admin"}

        assert environment_settings(environ) == {"FMA_AWS_READ_TIMEOUT": "3", "FMA_ADMIN_SECRET_ID": "fma/admin"}

    @pytest.mark.parametrize("package", ["fma_core", "fma_django_connectors"])
    def test_the_packages_read_no_environment(self, package):
        assert environment_reads(REPOSITORY / package) == []

    def test_in_api_service_only_the_settings_modules_read_the_environment(self):
        allowed = {
            # DJANGO_SETTINGS_MODULE: which settings module to read.
            "manage.py",
            "cold_start.py",
            "federated_learning_project/wsgi.py",
            # The local server's command-line defaults (PORT, workers, ...).
            "local_server.py",
            # A secret from a variable named like it is what these managers do; the Lambda runtime's variables.
            "secrets_managers/aws_secrets.py",
            "secrets_managers/env.py",
        }
        folder = REPOSITORY / "api_service"
        readers = {
            reader.split(":")[0]
            for reader in environment_reads(folder)
            if not reader.startswith("federated_learning_project/settings_")
        }

        assert readers <= allowed, sorted(readers - allowed)


class TestRegistration:
    def test_implementations_are_registered_in_one_module(self):
        """``<registry>.register`` is called by ``registrations.py`` alone, not by modules as they are imported."""
        registries = {"handlers", "aggregator_connectors", "metadata_connectors", "model_data_connectors"}
        callers = []
        for path in _sources(REPOSITORY / "fma_django_connectors"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr == "register"
                    and getattr(node.value, "id", None) in registries
                ):
                    callers.append(path.relative_to(REPOSITORY).as_posix())

        assert set(callers) == {"fma_django_connectors/registrations.py"}

    def test_the_settings_names_are_registered_at_start_up(self):
        from fma_core.connectors.factory import aggregator_connectors, metadata_connectors, model_data_connectors
        from fma_core.handlers import handlers

        # Tests register in-memory twins too (tests/fma_core/connectors/memory.py): the settings' names must be there.
        assert "django_lambda_handler" in handlers.names()
        assert "DjangoAggConnector" in aggregator_connectors.names()
        assert "DjangoMetadataConnector" in metadata_connectors.names()
        assert "DjangoModelDataConnector" in model_data_connectors.names()


def _literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _sources(folder):
    """The package's own modules: not the copies a wheel build leaves in ``build/``."""
    return sorted(path for path in folder.rglob("*.py") if "build" not in path.relative_to(folder).parts)


def environment_reads(folder):
    """``path:line`` of every ``os.environ`` / ``os.getenv`` / ``environ`` import under ``folder``."""
    found = []
    for path in _sources(folder):
        for node in ast.walk(ast.parse(path.read_text())):
            reads = (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb")) or (
                isinstance(node, ast.ImportFrom)
                and node.module == "os"
                and any(alias.name in ("environ", "getenv") for alias in node.names)
            )
            if reads:
                found.append(f"{path.relative_to(folder).as_posix()}:{node.lineno}")
    return found
