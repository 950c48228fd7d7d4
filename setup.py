"""Packaging for mmdet-updetr (``pip install -e .``)."""
import re
from pathlib import Path
from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def parse_requirements(fname: str) -> list:
    """Read package pins from ``requirements/<fname>``, skipping comments."""
    lines = (ROOT / 'requirements' / fname).read_text().splitlines()
    return [ln.strip() for ln in lines if re.match(r'^\s*[A-Za-z]', ln)]


def get_version() -> str:
    text = (ROOT / 'mmdet_updetr' / 'version.py').read_text()
    return re.search(r"__version__ = '(.+)'", text).group(1)


setup(
    name='mmdet_updetr',
    version=get_version(),
    description='UP-DETR: unsupervised pre-training for detection '
    'transformers, as an MMDetection 3.x extension',
    long_description=(ROOT / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    # Only the package: tools/ (a package for its own imports), tests/,
    # configs/ and demo/ stay in the repository.
    packages=find_packages(include=('mmdet_updetr', 'mmdet_updetr.*')),
    python_requires='>=3.8',
    install_requires=parse_requirements('runtime.txt'),
    extras_require=dict(
        mim=parse_requirements('mminstall.txt'),
        tests=parse_requirements('tests.txt'),
        build=parse_requirements('build.txt')),
    zip_safe=False)
