import math

from rank_bm25 import BM25Okapi

from citewise.retrieval.sparse import BM25Encoder, term_index, tokenize


def test_tokenize_stems_and_drops_stopwords() -> None:
    assert tokenize("The employees are travelling to the offices") == ["employe", "travel", "offic"]


def test_term_index_is_stable_and_31_bit() -> None:
    assert term_index("leave") == term_index("leave")
    assert term_index("leave") != term_index("leav")
    assert 0 <= term_index("anything") < 2**31


def test_query_vector_has_one_entry_per_distinct_term() -> None:
    vector = BM25Encoder().encode_query("leave leave policy")
    assert len(vector.indices) == 2
    assert vector.values == [1.0, 1.0]


def test_document_weights_saturate_with_term_frequency() -> None:
    encoder = BM25Encoder(avg_len=10)
    once = encoder.encode_document("alpha beta gamma delta")
    thrice = encoder.encode_document("alpha alpha alpha delta")
    weight = dict(zip(once.indices, once.values, strict=True))[term_index("alpha")]
    weight3 = dict(zip(thrice.indices, thrice.values, strict=True))[term_index("alpha")]
    assert weight < weight3 < 3 * weight
    assert weight3 < encoder.k1 + 1


def test_ranking_matches_rank_bm25_reference() -> None:
    """Dot product with an IDF (as Qdrant's modifier computes it) ranks like rank_bm25."""
    corpus = [
        "annual leave is twenty five days for every employee",
        "travel expenses need a receipt and manager approval",
        "the vpn cut over happens in march for every office",
        "parental leave and sick leave are paid in full",
        "employee badges open the office from seven in the morning",
    ]
    tokenized = [tokenize(d) for d in corpus]
    avg_len = sum(map(len, tokenized)) / len(tokenized)
    encoder = BM25Encoder(k1=1.5, b=0.75, avg_len=avg_len)
    reference = BM25Okapi(tokenized, k1=1.5, b=0.75)
    n = len(corpus)

    def idf(term: str) -> float:  # Qdrant's IDF modifier formula
        df = sum(term in doc for doc in tokenized)
        return math.log((n - df + 0.5) / (df + 0.5) + 1)

    for query in ["leave for employees", "office vpn", "travel receipt approval"]:
        q_terms = set(tokenize(query))
        ours = []
        for text in corpus:
            vec = encoder.encode_document(text)
            weights = dict(zip(vec.indices, vec.values, strict=True))
            ours.append(sum(idf(t) * weights.get(term_index(t), 0.0) for t in q_terms))
        theirs = reference.get_scores(list(q_terms))
        assert (
            sorted(range(n), key=lambda i: -ours[i])[:2]
            == sorted(range(n), key=lambda i: -theirs[i])[:2]
        )


def test_tokenize_is_thread_safe() -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"Employees travelling {n} times claimed reimbursements quarterly" for n in range(200)]
    expected = [tokenize(t) for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(5):
            assert list(pool.map(tokenize, texts)) == expected
