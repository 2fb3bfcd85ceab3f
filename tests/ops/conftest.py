from tests.inference.conftest import digits_family, digits_models  # noqa: F401
