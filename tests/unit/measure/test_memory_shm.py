"""shared_memory_files reads /proc/<pid>/maps: a file this process maps in /dev/shm is found with its size."""
import mmap
import os
import tempfile

from llmserve.measure.memory import shared_memory_files


def test_a_mapped_shm_file_is_found_with_its_size():
    handle, path = tempfile.mkstemp(dir="/dev/shm", prefix="course-test-")
    try:
        os.ftruncate(handle, 3 * 4096)
        mapping = mmap.mmap(handle, 3 * 4096)
        assert shared_memory_files(os.getpid())[path] == 3 * 4096
        mapping.close()
        assert path not in shared_memory_files(os.getpid())
    finally:
        os.close(handle)
        os.unlink(path)
