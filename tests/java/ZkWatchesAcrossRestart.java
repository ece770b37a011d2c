// Apache ZooKeeper's Java client (the one Kafka 3.9 ships, 3.8.4) holding watches across
// a server restart. After it reconnects it re-registers them with setWatches (setWatches2
// for the persistent one), under an ordinary xid it expects back; a changed xid makes it
// drop the connection ("Xid out of order") and reconnect again and again.
//
//   java -cp 'libs/*:classes' ZkWatchesAcrossRestart HOST:PORT[,HOST:PORT...] CHANGER_CONNECT
//
// Prints WATCHING once its watches are set; whoever runs it then breaks the connection
// (restarts the server). It waits to be connected again, has a second session make the
// changes through CHANGER_CONNECT, and checks that every watch fires. Prints OK and exits
// 0, or prints FAIL and why and exits 1.

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;

public class ZkWatchesAcrossRestart {
    static final int SESSION_MS = 20_000;
    static final long WAIT_S = 60;

    static void fail(String why) {
        System.out.println("FAIL " + why);
        System.out.flush();
        System.exit(1);
    }

    /** A watcher that records what it saw, tagged with its name. */
    static Watcher recorder(String name, BlockingQueue<String> seen) {
        return event -> {
            if (event.getType() != Watcher.Event.EventType.None) {
                seen.add(name + " " + event.getType() + " " + event.getPath());
            }
        };
    }

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String changerConnect = args[1];
        AtomicInteger connects = new AtomicInteger();
        AtomicInteger disconnects = new AtomicInteger();
        CountDownLatch first = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(connect, SESSION_MS, event -> {
            if (event.getState() == Watcher.Event.KeeperState.SyncConnected
                    && event.getType() == Watcher.Event.EventType.None) {
                connects.incrementAndGet();
                first.countDown();
            } else if (event.getState() == Watcher.Event.KeeperState.Disconnected) {
                disconnects.incrementAndGet();
            } else if (event.getState() == Watcher.Event.KeeperState.Expired) {
                fail("session expired");
            }
        });
        if (!first.await(WAIT_S, TimeUnit.SECONDS)) {
            fail("not connected");
        }
        long session = zk.getSessionId();
        zk.create("/jw", "0".getBytes(), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create("/jw/a", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        if (zk.getData("/jw/a", false, null) != null) {
            fail("a node created with null data reads back as non-null");
        }
        BlockingQueue<String> seen = new LinkedBlockingQueue<>();
        zk.getData("/jw", recorder("data", seen), null);
        zk.getChildren("/jw", recorder("child", seen));
        zk.exists("/jw-later", recorder("exists", seen));
        zk.addWatch("/jw", recorder("recursive", seen), AddWatchMode.PERSISTENT_RECURSIVE);
        System.out.println("WATCHING");
        System.out.flush();

        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
        while (!(disconnects.get() >= 1 && connects.get() >= 2)) {
            if (System.nanoTime() > deadline) {
                fail("no disconnect and reconnect: " + disconnects + " disconnects, "
                        + connects + " connects");
            }
            Thread.sleep(50);
        }
        if (zk.getSessionId() != session) {
            fail("a new session after the reconnect");
        }
        System.out.println("RECONNECTED");
        System.out.flush();

        CountDownLatch changerUp = new CountDownLatch(1);
        ZooKeeper changer = new ZooKeeper(changerConnect, SESSION_MS, event -> {
            if (event.getState() == Watcher.Event.KeeperState.SyncConnected) {
                changerUp.countDown();
            }
        });
        if (!changerUp.await(WAIT_S, TimeUnit.SECONDS)) {
            fail("the second session did not connect");
        }
        changer.setData("/jw", "1".getBytes(), -1);
        changer.create("/jw/b", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        changer.create("/jw-later", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);

        List<String> expected = List.of(
                "data NodeDataChanged /jw",
                "child NodeChildrenChanged /jw",
                "exists NodeCreated /jw-later",
                "recursive NodeDataChanged /jw",
                "recursive NodeCreated /jw/b");
        List<String> got = new ArrayList<>();
        deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
        while (!got.containsAll(expected)) {
            String e = seen.poll(100, TimeUnit.MILLISECONDS);
            if (e != null) {
                got.add(e);
            }
            if (System.nanoTime() > deadline) {
                fail("watch events: expected " + expected + ", got " + got);
            }
        }
        // A reconnect loop shows as more connects than the two (first, after the
        // restart): give one a few seconds to show up.
        Thread.sleep(3000);
        if (connects.get() != 2) {
            fail(connects.get() + " connects; the client kept reconnecting");
        }
        changer.close();
        zk.close();
        System.out.println("OK " + got);
    }
}
