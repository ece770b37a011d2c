// Apache Curator's recipes against a three-server ensemble, with a server killed while
// they run: LeaderLatch, InterProcessMutex, DistributedAtomicLong, PersistentNode,
// CuratorCache (persistent recursive watches), TTL and container nodes.
//
//   java -cp 'curator/lib/*:classes' CuratorRecipes HOST:PORT,HOST:PORT,HOST:PORT
//
// Prints RUNNING once the workloads are under way: whoever runs it then kills a server
// (and may restart it). Prints "ok - <check>" or "FAIL <check>: <why>" per check and
// exits with the number of failures.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

public class CuratorRecipes {
    static final int CLIENTS = 3;
    static final int ROUNDS = 60;
    /** Pause between rounds, so every workload is still running when the server dies. */
    static final long PACE_MS = 50;
    static final long WAIT_MS = 60_000;
    static int failures = 0;

    static void check(String what, boolean ok, String why) {
        if (ok) {
            System.out.println("ok - " + what);
        } else {
            failures++;
            System.out.println("FAIL " + what + ": " + why);
        }
        System.out.flush();
    }

    /** Retries `condition` every 100 ms until it holds or WAIT_MS have passed. */
    static boolean eventually(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.currentTimeMillis() + WAIT_MS;
        while (System.currentTimeMillis() < deadline) {
            if (condition.getAsBoolean()) {
                return true;
            }
            Thread.sleep(100);
        }
        return condition.getAsBoolean();
    }

    static CuratorFramework client(String connect) throws InterruptedException {
        CuratorFramework c = CuratorFrameworkFactory.builder()
                .connectString(connect)
                .sessionTimeoutMs(20_000)
                .connectionTimeoutMs(5_000)
                .retryPolicy(new ExponentialBackoffRetry(100, 20, 1_000))
                .build();
        c.start();
        if (!c.blockUntilConnected(60, TimeUnit.SECONDS)) {
            throw new IllegalStateException("not connected to " + connect);
        }
        return c;
    }

    static boolean exists(CuratorFramework c, String path) {
        try {
            return c.checkExists().forPath(path) != null;
        } catch (Exception e) {
            return false;
        }
    }

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        List<CuratorFramework> clients = new ArrayList<>();
        for (int i = 0; i < CLIENTS; i++) {
            clients.add(client(connect));
        }
        CuratorFramework main = clients.get(0);

        List<LeaderLatch> latches = new ArrayList<>();
        for (int i = 0; i < CLIENTS; i++) {
            LeaderLatch latch = new LeaderLatch(clients.get(i), "/recipes/latch", "member-" + i);
            latch.start();
            latches.add(latch);
        }
        check("LeaderLatch elects one leader",
                eventually(() -> latches.stream().filter(LeaderLatch::hasLeadership).count() == 1),
                "leaders: " + latches.stream().filter(LeaderLatch::hasLeadership).count());

        PersistentNode node = new PersistentNode(clients.get(1), CreateMode.EPHEMERAL, false,
                "/recipes/persistent", "mine".getBytes(StandardCharsets.UTF_8));
        node.start();
        check("PersistentNode creates its node", node.waitForInitialCreate(60, TimeUnit.SECONDS),
                "not created");

        ConcurrentLinkedQueue<String> cacheEvents = new ConcurrentLinkedQueue<>();
        CuratorCache cache = CuratorCache.build(main, "/recipes/cache");
        cache.listenable().addListener(CuratorCacheListener.builder()
                .forCreates(d -> cacheEvents.add("created " + d.getPath()))
                .forChanges((before, after) -> cacheEvents.add("changed " + after.getPath()))
                .forDeletes(d -> cacheEvents.add("deleted " + d.getPath()))
                .build());
        cache.start();

        main.create().creatingParentsIfNeeded().forPath("/recipes/counter", "0".getBytes());
        ConcurrentLinkedQueue<Long> atomicPosts = new ConcurrentLinkedQueue<>();
        ConcurrentLinkedQueue<String> errors = new ConcurrentLinkedQueue<>();
        List<Thread> workers = new ArrayList<>();
        for (int i = 0; i < CLIENTS; i++) {
            CuratorFramework c = clients.get(i);
            // A counter in a znode, read and written under an InterProcessMutex: the
            // written value is absolute, so a retried write cannot count twice.
            workers.add(new Thread(() -> {
                InterProcessMutex mutex = new InterProcessMutex(c, "/recipes/mutex");
                try {
                    for (int r = 0; r < ROUNDS; r++) {
                        if (!mutex.acquire(60, TimeUnit.SECONDS)) {
                            errors.add("mutex not acquired");
                            return;
                        }
                        try {
                            byte[] raw = c.getData().forPath("/recipes/counter");
                            int n = Integer.parseInt(new String(raw, StandardCharsets.UTF_8));
                            c.setData().forPath("/recipes/counter", Integer.toString(n + 1).getBytes());
                        } finally {
                            mutex.release();
                        }
                        Thread.sleep(PACE_MS);
                    }
                } catch (Exception e) {
                    errors.add("mutex worker: " + e);
                }
            }));
            workers.add(new Thread(() -> {
                DistributedAtomicLong counter =
                        new DistributedAtomicLong(c, "/recipes/atomic", new RetryNTimes(200, 50));
                try {
                    for (int r = 0; r < ROUNDS; r++) {
                        AtomicValue<Long> v = counter.increment();
                        if (!v.succeeded()) {
                            errors.add("atomic increment did not succeed");
                            return;
                        }
                        atomicPosts.add(v.postValue());
                        Thread.sleep(PACE_MS);
                    }
                } catch (Exception e) {
                    errors.add("atomic worker: " + e);
                }
            }));
        }
        // Writes the cache watches: creates, changes and deletes under /recipes/cache.
        workers.add(new Thread(() -> {
            try {
                for (int r = 0; r < ROUNDS; r++) {
                    String p = "/recipes/cache/n" + r;
                    try {
                        main.create().creatingParentsIfNeeded().forPath(p, "v0".getBytes());
                    } catch (KeeperException.NodeExistsException retried) {
                        // A create whose first attempt was applied before the connection went.
                    }
                    if (r % 2 == 0) {
                        main.setData().forPath(p, "v1".getBytes());
                    }
                    if (r % 3 == 0) {
                        try {
                            main.delete().forPath(p);
                        } catch (KeeperException.NoNodeException retried) {
                            // A delete applied before the connection went.
                        }
                    }
                    Thread.sleep(PACE_MS);
                }
            } catch (Exception e) {
                errors.add("cache writer: " + e);
            }
        }));
        workers.forEach(Thread::start);
        System.out.println("RUNNING");
        System.out.flush();
        for (Thread t : workers) {
            t.join(300_000);
        }
        check("workloads rode through the server kill", errors.isEmpty(), errors.toString());

        byte[] counter = main.getData().forPath("/recipes/counter");
        check("InterProcessMutex: no lost or doubled update",
                new String(counter, StandardCharsets.UTF_8).equals(Integer.toString(CLIENTS * ROUNDS)),
                "counter = " + new String(counter, StandardCharsets.UTF_8));

        // A write whose reply is lost with the connection may be applied and then retried,
        // so the atomic counter may pass CLIENTS * ROUNDS; no two increments may ever
        // see the same value.
        DistributedAtomicLong atomic = new DistributedAtomicLong(main, "/recipes/atomic", new RetryNTimes(10, 100));
        long finalValue = atomic.get().postValue();
        Set<Long> distinct = new HashSet<>(atomicPosts);
        check("DistributedAtomicLong: every increment distinct",
                atomicPosts.size() == CLIENTS * ROUNDS && distinct.size() == atomicPosts.size()
                        && finalValue >= CLIENTS * ROUNDS
                        && finalValue == atomicPosts.stream().mapToLong(Long::longValue).max().orElse(-1),
                atomicPosts.size() + " increments, " + distinct.size() + " distinct, final " + finalValue);

        // The cache ends equal to the tree, and still hears about new nodes.
        check("CuratorCache matches the tree", eventually(() -> {
            try {
                Map<String, String> tree = new TreeMap<>();
                for (String child : main.getChildren().forPath("/recipes/cache")) {
                    String p = "/recipes/cache/" + child;
                    tree.put(p, new String(main.getData().forPath(p), StandardCharsets.UTF_8));
                }
                Map<String, String> cached = cache.stream()
                        .filter(d -> d.getPath().startsWith("/recipes/cache/"))
                        .collect(Collectors.toMap(ChildData::getPath,
                                d -> new String(d.getData(), StandardCharsets.UTF_8), (a, b) -> a, TreeMap::new));
                return tree.equals(cached);
            } catch (Exception e) {
                return false;
            }
        }), "cache " + cache.stream().map(ChildData::getPath).collect(Collectors.toList()));
        clients.get(2).create().forPath("/recipes/cache/late", "x".getBytes());
        check("CuratorCache hears a create after the kill",
                eventually(() -> cacheEvents.contains("created /recipes/cache/late")),
                "events: " + cacheEvents.size());

        check("LeaderLatch: one leader after the kill",
                eventually(() -> latches.stream().filter(LeaderLatch::hasLeadership).count() == 1),
                "leaders: " + latches.stream().filter(LeaderLatch::hasLeadership).count());
        LeaderLatch leader = latches.stream().filter(LeaderLatch::hasLeadership).findFirst().orElseThrow();
        leader.close();
        check("LeaderLatch: leadership passes on when the leader leaves",
                eventually(() -> latches.stream().filter(l -> l != leader).filter(LeaderLatch::hasLeadership).count() == 1),
                "no new leader");

        check("PersistentNode kept through the kill", exists(clients.get(2), "/recipes/persistent"), "gone");
        clients.get(2).delete().forPath("/recipes/persistent");
        check("PersistentNode puts its node back", eventually(() -> {
            try {
                Stat s = clients.get(2).checkExists().forPath("/recipes/persistent");
                return s != null && s.getEphemeralOwner() == clients.get(1).getZookeeperClient().getZooKeeper().getSessionId();
            } catch (Exception e) {
                return false;
            }
        }), "not recreated by its owner");

        main.create().withTtl(500).withMode(CreateMode.PERSISTENT_WITH_TTL).forPath("/recipes/ttl");
        check("TTL node goes when its time is up", eventually(() -> !exists(main, "/recipes/ttl")), "still there");

        main.create().withMode(CreateMode.CONTAINER).forPath("/recipes/box");
        main.create().forPath("/recipes/box/c");
        main.delete().forPath("/recipes/box/c");
        check("container goes once emptied", eventually(() -> !exists(main, "/recipes/box")), "still there");

        node.close();
        cache.close();
        for (LeaderLatch l : latches) {
            if (l != leader) {
                l.close();
            }
        }
        for (CuratorFramework c : clients) {
            c.close();
        }
        System.out.println(failures == 0 ? "ALL OK" : failures + " FAILED");
        System.exit(failures);
    }
}
