# Puts the nucleiseg package (workflow/scripts/nucleiseg) on sys.path for common.smk's
# parse-time imports, wherever this workflow is read from. Paths start from this file
# (workflow.current_basedir), never from workflow.basedir: when another workflow imports this
# one as a module, workflow.basedir is that workflow's folder.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.sourcecache import HostingProviderFile, LocalSourceFile


def package_parent(scripts):
    """The folder holding the package, given workflow/scripts as Snakemake sees it.

    On disk (a checkout, or a module by local path): that folder. A module from a git host
    (github(...) or gitlab(...)): Snakemake reads the rule scripts from its clone into its
    source cache, and runs each with its cache folder on sys.path; the package's files are
    copied there too, beside the scripts, so that this parse and every script import them.
    """
    if isinstance(scripts, LocalSourceFile):
        return scripts.get_path_or_uri(secret_free=False)
    if not isinstance(scripts, HostingProviderFile):
        raise WorkflowError(
            f"nucleiseg cannot import its package from {scripts}: use it as a module from a "
            'local path or from github("<owner>/nucleiseg", path="Snakefile", tag=...)'
        )
    listing = scripts.hosted_repo.repo.git.ls_tree(
        "-r", "--name-only", scripts.ref, "--", f"{scripts.path}/nucleiseg"
    )
    for name in listing.splitlines():
        workflow.sourcecache.get_path(scripts.join(name[len(scripts.path) + 1 :]))
    init = workflow.sourcecache.get_path(scripts.join("nucleiseg/__init__.py"))
    return str(Path(init).parents[1])


sys.path.insert(0, package_parent(workflow.current_basedir.join("../scripts")))
