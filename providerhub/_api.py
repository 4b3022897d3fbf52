"""The ``create`` signatures, each declared once, and the module-level :func:`create` and
:func:`acreate` of the default hub.

Six callables share one set of parameters: :func:`create`, :func:`acreate`,
:meth:`Hub.create <providerhub.Hub.create>`, :meth:`Hub.acreate <providerhub.Hub.acreate>`,
and ``chat.completions.create`` of :class:`~providerhub.Client` and
:class:`~providerhub.AsyncClient`. What they return depends on ``stream``: the whole
answer, or its pieces as they arrive. Two generic callback protocols say so for a type
checker, each with one overloaded ``__call__``: :class:`Create` (``model`` and ``messages``
by position or keyword, request parameters in ``**kwargs``) and :class:`CreateCompletion`
(everything by keyword, request parameters in ``**params``, as the openai SDK's
``create``). Each callable is an attribute annotated with one of them::

    create: Create[str, Stream]

At run time the parameters are written once too, as :meth:`Hub._prepare
<providerhub.Hub._prepare>`'s, which every callable forwards its arguments to;
:func:`signed` gives each callable its name and those parameters, so that ``help()`` and
:func:`inspect.signature` show them as if written out. The ``embeddings.create`` of the
two clients are declared the same way: :class:`CreateEmbedding`, with :meth:`Hub._prepare_embeddings
<providerhub.Hub._prepare_embeddings>`'s parameters.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

from ._hub import Hub, get_hub, signed

if TYPE_CHECKING:
    from urllib3.util import Retry

    from ._routing.arouter import AsyncStream
    from ._routing.router import Auth, ProviderChoice, Stream
    from ._timeout import TimeoutLike

__all__ = ["Create", "CreateCompletion", "CreateEmbedding", "__getattr__", "acreate", "create"]

Whole_co = TypeVar("Whole_co", covariant=True)
Streamed_co = TypeVar("Streamed_co", covariant=True)


class Create(Protocol[Whole_co, Streamed_co]):
    """``create(model, messages, *, stream=False, provider=None, auth=None, timeout=None,
    retries=None, **kwargs)``: ``Whole_co`` without ``stream`` (or with ``stream=False``),
    ``Streamed_co`` with ``stream=True``, either when ``stream`` is only known to be a
    ``bool``."""

    @overload
    def __call__(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        stream: Literal[False] = False,
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **kwargs: Any,
    ) -> Whole_co: ...

    @overload
    def __call__(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        stream: Literal[True],
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **kwargs: Any,
    ) -> Streamed_co: ...

    @overload
    def __call__(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        stream: bool,
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **kwargs: Any,
    ) -> Whole_co | Streamed_co: ...


class CreateCompletion(Protocol[Whole_co, Streamed_co]):
    """``chat.completions.create(*, model, messages, stream=False, provider=None,
    auth=None, timeout=None, retries=None, **params)``, everything by keyword as in the
    openai SDK: ``Whole_co`` or ``Streamed_co`` by ``stream``, as :class:`Create`."""

    @overload
    def __call__(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: Literal[False] = False,
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **params: Any,
    ) -> Whole_co: ...

    @overload
    def __call__(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: Literal[True],
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **params: Any,
    ) -> Streamed_co: ...

    @overload
    def __call__(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: bool,
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **params: Any,
    ) -> Whole_co | Streamed_co: ...


Returned_co = TypeVar("Returned_co", covariant=True)


class CreateEmbedding(Protocol[Returned_co]):
    """``embeddings.create(*, model, input, encoding_format="float", dimensions=None,
    user=None, provider=None, auth=None, timeout=None, retries=None)`` of
    :class:`~providerhub.Client` (``Returned_co`` a
    :class:`~providerhub.types.CreateEmbeddingResponse`) and of
    :class:`~providerhub.AsyncClient` (a coroutine of one); at run time the parameters
    are :meth:`Hub._prepare_embeddings <providerhub.Hub._prepare_embeddings>`'s."""

    def __call__(
        self,
        *,
        model: str,
        input: str | list[str] | list[int] | list[list[int]],
        encoding_format: str = "float",
        dimensions: int | None = None,
        user: str | None = None,
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
    ) -> Returned_co: ...


def _create(*args: Any, **kwargs: Any) -> str | Stream:
    """Complete ``messages`` with ``model`` on the default hub (:func:`get_hub`).

    See :meth:`Hub.create`.
    """
    return get_hub()._create(*args, **kwargs)


def _acreate(*args: Any, **kwargs: Any) -> Coroutine[Any, Any, str] | AsyncStream:
    """:func:`create` for asyncio, on the default hub: ``await acreate(...)`` gives the
    text; ``async for piece in acreate(..., stream=True)`` the pieces as they arrive.

    See :meth:`Hub.acreate`.
    """
    return get_hub()._acreate(*args, **kwargs)


# help() names the module they are imported from, as it did when they were written there.
_create.__module__ = _acreate.__module__ = "providerhub"
create: Create[str, Stream] = signed(_create, Hub._prepare, "create", unbound=True)
acreate: Create[Coroutine[Any, Any, str], AsyncStream] = signed(
    _acreate, Hub._prepare, "acreate", unbound=True
)


def __getattr__(name: str) -> Any:
    """The names :mod:`providerhub` imports on first use (PEP 562; it re-exports this
    function as its own ``__getattr__``)."""
    # AsyncStream lives with asyncio, whose import a program that never awaits should not
    # pay for.
    if name == "AsyncStream":
        from ._routing.arouter import AsyncStream

        return AsyncStream
    if name == "RedisState":  # kept out of the import of a program that shares nothing
        from ._state.redis import RedisState

        return RedisState
    raise AttributeError(f"module 'providerhub' has no attribute {name!r}")
