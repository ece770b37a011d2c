import pytest

from strata_broker import Broker


@pytest.fixture
def broker(request):
    b = Broker()
    yield b
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print("--- broker log ---\n" + b.log())
    b.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
